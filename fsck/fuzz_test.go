package fsck

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

var (
	fuzzIters = flag.Int("fsck.fuzz", 40, "iterations of TestFuzzMetadata")
	fuzzSeed  = flag.Uint64("fsck.seed", 1, "first seed of TestFuzzMetadata")
)

// span is a byte range of the image.
type span struct{ off, n int64 }

// metadataSpans lists where the metadata of an image lies: superblock,
// summary array, cylinder groups, initialised inodes, directory blocks and
// indirect blocks.
func metadataSpans(m *img) []span {
	sb := m.sb
	out := []span{{sb.Sblockloc, int64(sb.Sbsize)}, {sb.FragOffset(sb.Csaddr), int64(sb.Cssize)}}
	for g := ondisk.Cg(0); g < ondisk.Cg(sb.Ncg); g++ {
		out = append(out, span{sb.FragOffset(sb.Cgtod(g)), int64(sb.Cgsize)})
		cg := m.cg(g)
		first := ondisk.Ino(uint32(g) * sb.Ipg)
		out = append(out, span{sb.InoOffset(first), int64(cg.Initediblk) * ondisk.DinodeSize})
	}
	var walk func(dir ondisk.Ino, depth int)
	walk = func(dir ondisk.Ino, depth int) {
		dp := m.inode(dir)
		for _, b := range m.blocks(dp) {
			if b != 0 {
				out = append(out, span{sb.FragOffset(b), int64(sb.Fsize)})
			}
		}
		for _, ib := range dp.Ib {
			if ib != 0 {
				out = append(out, span{sb.FragOffset(ib), int64(sb.Bsize)})
			}
		}
		if depth > 32 {
			return
		}
		for _, e := range m.entries(dir) {
			if e.name == "." || e.name == ".." {
				continue
			}
			child := m.inode(e.ino)
			if child.IsDir() {
				walk(e.ino, depth+1)
			} else {
				for _, ib := range child.Ib {
					if ib != 0 {
						out = append(out, span{sb.FragOffset(ib), int64(sb.Bsize)})
					}
				}
			}
		}
	}
	walk(ondisk.RootIno, 0)
	return out
}

// timedCheck runs Check with a time limit, turning a panic or a hang into
// an error.
func timedCheck(b []byte, opts Options, limit time.Duration) (rep *Report, after []byte, out string, err error) {
	dev := blockdev.NewMemBytes(b)
	var d blockdev.Device = dev
	if opts.Mode == No {
		d = dev.ReadOnlyView()
	}
	var sb strings.Builder
	opts.Output = &sb
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{nil, fmt.Errorf("PANIC: %v\n%s", r, debug.Stack())}
			}
		}()
		r, e := Check(ctx, d, opts)
		done <- result{r, e}
	}()
	select {
	case r := <-done:
		if r.rep == nil && r.err != nil && strings.HasPrefix(r.err.Error(), "PANIC") {
			return nil, nil, sb.String(), r.err
		}
		if errors.Is(r.err, context.DeadlineExceeded) {
			return r.rep, dev.Bytes(), "", fmt.Errorf("HANG: check did not finish in %v", limit)
		}
		return r.rep, dev.Bytes(), sb.String(), r.err
	case <-time.After(limit + 5*time.Second):
		return nil, nil, "", fmt.Errorf("HANG: check ignored its context for %v", limit+5*time.Second)
	}
}

func TestFuzzMetadata(t *testing.T) {
	specs := []imageSpec{specSmall, specHash, specMulti}
	origs := make([][]byte, len(specs))
	spanss := make([][]span, len(specs))
	for i, s := range specs {
		origs[i] = image(t, s)
		spanss[i] = metadataSpans(openImg(t, origs[i]))
	}
	limit := 20 * time.Second
	for it := 0; it < *fuzzIters; it++ {
		seed := *fuzzSeed + uint64(it)
		orig, spans := origs[seed%3], spanss[seed%3]
		rng := rand.New(rand.NewPCG(seed, 0x75667332))
		b := bytes.Clone(orig)
		flips := 1 + rng.IntN(8)
		var where []string
		for range flips {
			s := spans[rng.IntN(len(spans))]
			off := s.off + rng.Int64N(s.n)
			b[off] ^= byte(1 + rng.IntN(255))
			where = append(where, fmt.Sprint(off))
		}
		name := fmt.Sprintf("seed %d (%s image, bytes %s)", seed, specs[seed%3].name, strings.Join(where, ","))

		rep, after, out, err := timedCheck(b, Options{Mode: No, Force: true}, limit)
		if err != nil && (strings.HasPrefix(err.Error(), "PANIC") || strings.HasPrefix(err.Error(), "HANG")) {
			t.Fatalf("%s: fsck -n: %v\n%s", name, err, out)
		}
		if after != nil && !bytes.Equal(after, b) {
			t.Fatalf("%s: fsck -n wrote to the image", name)
		}
		if rep != nil && rep.refusedWrites != 0 {
			t.Errorf("%s: fsck -n tried %d writes\n%s", name, rep.refusedWrites, out)
		}
		fixed := b
		var yout string
		ok := false
		// fsck_ffs's promise: done in one run, or in two when the first
		// asks for a rerun (16).
		for run := 0; run < 2; run++ {
			rep, after, out, err := timedCheck(fixed, Options{Mode: Yes, Force: true}, limit)
			yout += out
			if err != nil {
				if strings.HasPrefix(err.Error(), "PANIC") || strings.HasPrefix(err.Error(), "HANG") {
					t.Fatalf("%s: fsck -y: %v\n%s", name, err, yout)
				}
				// Damage fsck cannot get past (no superblock at all).
				if !errors.Is(err, ErrNoSuperblock) && !errors.Is(err, ErrAborted) {
					t.Errorf("%s: fsck -y: %v\n%s", name, err, yout)
				}
				break
			}
			fixed = after
			if rep.ExitCode == ExitOK {
				ok = true
				break
			}
			if rep.ExitCode != ExitRerun || run == 1 {
				t.Errorf("%s: fsck -y: exit %d (run %d), want 0, or 16 then 0\n%s", name, rep.ExitCode, run+1, yout)
				break
			}
		}
		if !ok {
			continue
		}
		rep, _, out, err = timedCheck(fixed, Options{Mode: No, Force: true}, limit)
		if err != nil || rep.ExitCode != ExitOK || len(rep.Problems) != 0 {
			t.Errorf("%s: not clean after fsck -y: err %v\n-- fsck -y:\n%s\n-- fsck -n -f:\n%s", name, err, yout, out)
		}
	}
}
