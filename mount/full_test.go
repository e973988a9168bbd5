package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
)

// TestFullConcurrent: several writers at once fill a small filesystem, half
// with large files, half with empty files and directories: on one image
// the blocks run out first, on one with few inodes the inodes do. Every
// failure is ENOSPC; once all is removed the free blocks and inodes are
// exactly what they were, and the image is clean. Twice on each, so that
// the space given back is used again.
func TestFullConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		density int
	}{{"blocks", 0}, {"inodes", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			img := newImageDensity(t, 24<<20, tc.density)
			t.Cleanup(func() { checkImage(t, img) })
			mnt, _ := mountImage(t, img, Options{})
			fillConcurrent(t, mnt, tc.name == "inodes")
		})
	}
}

func fillConcurrent(t *testing.T, mnt string, wantInodesOut bool) {
	var before unix.Statfs_t
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	const workers = 6
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		made := make([][]string, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dir := filepath.Join(mnt, fmt.Sprintf("w%d", w))
				if err := os.Mkdir(dir, 0o755); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						errs <- err
					}
					return
				}
				made[w] = append(made[w], dir)
				buf := make([]byte, 256<<10)
				for i := 0; ; i++ {
					p := filepath.Join(dir, fmt.Sprintf("f%d", i))
					var err error
					if w%2 == 0 {
						err = writeFileSync(p, buf, 8)
					} else if i%4 == 0 {
						err = os.Mkdir(p, 0o755)
					} else {
						err = os.WriteFile(p, nil, 0o644)
					}
					if _, serr := os.Lstat(p); serr == nil {
						made[w] = append(made[w], p)
					}
					if err != nil {
						if !errors.Is(err, syscall.ENOSPC) {
							errs <- fmt.Errorf("round %d worker %d file %d: %w, want ENOSPC", round, w, i, err)
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var full unix.Statfs_t
		if err := unix.Statfs(mnt, &full); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: full with %d free fragments, %d free inodes", round, full.Bavail, full.Ffree)
		if wantInodesOut && full.Ffree != 0 {
			t.Errorf("round %d: %d inodes left: the inodes were to run out", round, full.Ffree)
		}
		for _, m := range made {
			for i := len(m) - 1; i >= 0; i-- {
				if err := os.Remove(m[i]); err != nil {
					t.Errorf("removing %s: %v", m[i], err)
				}
			}
		}
		unix.Sync()
		var after unix.Statfs_t
		if err := unix.Statfs(mnt, &after); err != nil {
			t.Fatal(err)
		}
		if after.Bfree != before.Bfree || after.Ffree != before.Ffree {
			t.Errorf("round %d: after removing everything %d free fragments, %d free inodes; before %d, %d", round, after.Bfree, after.Ffree, before.Bfree, before.Ffree)
		}
	}
}

// writeFileSync writes n copies of buf to a new file p and fsyncs it.
func writeFileSync(p string, buf []byte, n int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	for range n {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newImageDensity is newImage with newfs -i density (0: the default).
func newImageDensity(t testing.TB, size int64, density int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ufs2.img")
	dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	p := newfs.DefaultParams()
	p.NoSnapDir = true
	p.Density = density
	if _, err := newfs.Format(context.Background(), dev, p); err != nil {
		t.Fatalf("newfs: %v", err)
	}
	return img
}
