package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/mount"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

// The demo is the README's first command: it runs the main job on a
// built-in default so that a fresh checkout shows what ufs2 does. It
// formats an image, mounts it through FUSE, writes files through the
// mount with ordinary system calls, unmounts, checks the image with fsck
// and lists it offline. Without FUSE (no /dev/fuse, not root) it writes
// the same files offline through the engine instead and says so.
func init() {
	register(withDoc(&cli.Command{
		Name:      "demo",
		Usage:     "format a 1 GiB sparse UFS2 image, mount it, write files, unmount, fsck it",
		ArgsUsage: "[IMAGE]",
		Description: "Formats IMAGE, mounts it on a temporary directory, writes a few files\n" +
			"through the mount, unmounts, runs fsck -n -f and lists the result. Without\n" +
			"IMAGE the image is demo.img in a new directory under $TMPDIR (or in -d DIR),\n" +
			"so that a demo run inside a source tree leaves nothing in it. The image is\n" +
			"kept, and its path printed, so that it can be looked at afterwards; an\n" +
			"existing file is refused.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "d", Usage: "make demo.img in `DIR` instead of a new directory under $TMPDIR"},
		},
		Action: runDemo,
	}, manDoc{
		Examples: []example{
			{"ufs2 demo", "Run the demonstration on demo.img in a new directory under $TMPDIR, kept afterwards (the last line says where)."},
			{"ufs2 demo -d .", "Make and keep ./demo.img, to look at it afterwards with ufs2 ls or ufs2 dumpfs."},
			{"ufs2 demo /tmp/try.img", "Use /tmp/try.img as the image."},
		},
		Exit:    "0 when every step worked and fsck found the image clean, 1 otherwise (the step that failed is named), 64 for a bad command line.",
		SeeAlso: []string{"ufs2-newfs(8)", "ufs2-mount(8)", "ufs2-fsck(8)"},
	}))
}

func runDemo(c *cli.Context) error {
	if c.NArg() > 1 || c.NArg() == 1 && c.IsSet("d") {
		return exitf(exitUsage, "demo: give IMAGE or -d DIR, not both, and at most one IMAGE; see ufs2 demo --help")
	}
	var img string
	switch {
	case c.NArg() == 1:
		img = c.Args().First()
	case c.IsSet("d"):
		img = filepath.Join(c.String("d"), "demo.img")
	default:
		dir, err := os.MkdirTemp("", "ufs2-demo-")
		if err != nil {
			return exitf(1, "demo: making a directory for the image: %v", err)
		}
		img = filepath.Join(dir, "demo.img")
	}
	if _, err := os.Stat(img); err == nil {
		return exitf(1, "demo: %s exists; remove it or name another image", img)
	}
	ctx := c.Context
	const size = 1 << 30
	dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		return exitf(1, "demo: %v", err)
	}
	sb, err := newfs.Format(ctx, dev, newfs.DefaultParams())
	if cerr := dev.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return exitf(1, "demo: newfs %s: %v", img, err)
	}
	abs, _ := filepath.Abs(img)
	fmt.Printf("1. ufs2 newfs: %s, %d MiB, block size %d, fragment size %d, %d cylinder groups, %d inodes, soft updates and check-hashes on\n",
		abs, size>>20, sb.Bsize, sb.Fsize, sb.Ncg, int64(sb.Ncg)*int64(sb.Ipg))

	sums, how, err := demoWrite(ctx, img)
	if err != nil {
		return exitf(1, "demo: %v", err)
	}
	fmt.Printf("2. wrote %d files %s, then unmounted\n", len(sums), how)

	dev, err = blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		return exitf(1, "demo: %v", err)
	}
	defer dev.Close()
	rep, err := fsck.Check(ctx, dev, fsck.Options{Mode: fsck.No, Force: true})
	if err != nil {
		return exitf(1, "demo: fsck %s: %v", img, err)
	}
	s := rep.Summary
	fmt.Printf("3. ufs2 fsck -n -f: %d problems; %d files, %d used, %d free (%d frags, %d blocks, %.1f%% fragmentation)\n",
		len(rep.Problems), s.Files, s.Used, s.Free, s.FreeFrags, s.FreeBlocks, s.Fragmentation)
	if len(rep.Problems) != 0 {
		return exitf(1, "demo: fsck found problems in %s", img)
	}

	fs, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		return exitf(1, "demo: opening %s: %v", img, err)
	}
	defer fs.Close()
	for name, want := range sums {
		ino, err := fs.Namei(name)
		if err != nil {
			return exitf(1, "demo: %s: %v after unmount", name, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(readerAt{fs, ino}, 0, 1<<40)); err != nil {
			return exitf(1, "demo: %s: %v", name, err)
		}
		if [32]byte(h.Sum(nil)) != want {
			return exitf(1, "demo: %s: contents differ after unmount", name)
		}
	}
	fmt.Println("4. every file read back offline with the contents written; ufs2 ls -lR:")
	if err := tools.List(fs, "/", tools.ListOptions{Long: true, Recursive: true}, os.Stdout); err != nil {
		return exitf(1, "demo: %v", err)
	}
	var st syscall.Stat_t
	if syscall.Stat(img, &st) == nil {
		fmt.Printf("\nthe image is sparse: %d MiB long, %d KiB allocated on the host\n", st.Size>>20, st.Blocks/2)
	}
	fmt.Printf("the image is kept: %s\n", abs)
	fmt.Printf("next: ufs2 mount %s /mnt; ufs2 dumpfs %s; sleuthkit's fls -r -f ufs2 %s\n", abs, abs, abs)
	return nil
}

// readerAt adapts the engine to io.ReaderAt for one inode.
type readerAt struct {
	fs  *ufs.FS
	ino ondisk.Ino
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) { return r.fs.ReadAt(r.ino, p, off) }

// demoFiles writes the demo's files under root with ordinary system calls
// and returns the digest of each regular file by its path in the image.
func demoFiles(root string) (map[string][32]byte, error) {
	sums := map[string][32]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(rel string, data []byte) error {
		if err := os.WriteFile(filepath.Join(root, rel), data, 0o644); err != nil {
			return err
		}
		sums["/"+rel] = sha256.Sum256(data)
		return nil
	}
	if err := os.MkdirAll(filepath.Join(root, "docs/notes"), 0o755); err != nil {
		return nil, err
	}
	if err := write("hello.txt", []byte("Hello from Linux, written into a FreeBSD UFS2 filesystem.\n")); err != nil {
		return nil, err
	}
	for i := 0; i < 20; i++ {
		data := make([]byte, rng.IntN(40000))
		for j := range data {
			data[j] = byte('a' + rng.IntN(26))
		}
		if err := write(fmt.Sprintf("docs/notes/note%02d.txt", i), data); err != nil {
			return nil, err
		}
	}
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := write("docs/random.bin", big); err != nil {
		return nil, err
	}
	if err := os.Symlink("docs/notes/note00.txt", filepath.Join(root, "first-note")); err != nil {
		return nil, err
	}
	if err := os.Link(filepath.Join(root, "hello.txt"), filepath.Join(root, "docs/hello-again.txt")); err != nil {
		return nil, err
	}
	sums["/docs/hello-again.txt"] = sums["/hello.txt"]
	return sums, nil
}

// demoWrite writes the demo files into the image: through a FUSE mount
// when one can be made, else offline through the engine.
func demoWrite(ctx context.Context, img string) (map[string][32]byte, string, error) {
	dir, err := os.MkdirTemp("", "ufs2-demo-mnt-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	opts := mount.Options{}
	eng, err := mount.OpenTarget(img, &opts)
	if err != nil {
		return nil, "", err
	}
	srv, merr := mount.Mount(dir, eng, opts)
	if merr == nil {
		sums, werr := demoFiles(dir)
		uerr := srv.Unmount()
		if cerr := srv.Wait(); uerr == nil {
			uerr = cerr
		}
		if werr != nil {
			return nil, "", fmt.Errorf("writing through the mount: %w", werr)
		}
		if uerr != nil {
			return nil, "", fmt.Errorf("unmount: %w", uerr)
		}
		return sums, "through a FUSE mount on " + dir + " (ordinary system calls)", nil
	}
	if err := eng.Close(); err != nil {
		return nil, "", err
	}
	fmt.Printf("   (could not mount through FUSE: %v; writing offline instead)\n", merr)
	src, err := os.MkdirTemp("", "ufs2-demo-src-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(src)
	sums, err := demoFiles(src)
	if err != nil {
		return nil, "", err
	}
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		return nil, "", err
	}
	fs, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		dev.Close()
		return nil, "", err
	}
	if _, err := tools.Put(ctx, fs, src+"/", "/", tools.PutOptions{}); err != nil {
		fs.Close()
		return nil, "", err
	}
	if err := fs.Close(); err != nil {
		return nil, "", err
	}
	return sums, "offline through the engine (ufs2 put)", nil
}
