package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

// The demo is the README's first command: it runs the main job on a
// built-in default so a fresh checkout shows what ufs2 does.
func init() {
	register(&cli.Command{
		Name:      "demo",
		Usage:     "format a 1 GiB sparse UFS2 image with FreeBSD's defaults and read it back",
		ArgsUsage: "[IMAGE]",
		Description: "Formats IMAGE (default ufs2-demo.img in the current directory; an existing\n" +
			"file is refused) and shows the geometry, the root directory and the summary.",
		Action: runDemo,
	})
}

func runDemo(c *cli.Context) error {
	img := "ufs2-demo.img"
	if c.NArg() > 0 {
		img = c.Args().First()
	}
	if _, err := os.Stat(img); err == nil {
		return exitf(1, "%s exists; remove it or name another image", img)
	}
	const size = 1 << 30
	dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		return exitf(1, "%v", err)
	}
	p := newfs.DefaultParams()
	sb, err := newfs.Format(context.Background(), dev, p)
	if cerr := dev.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return exitf(1, "newfs %s: %v", img, err)
	}
	abs, _ := filepath.Abs(img)
	fmt.Printf("formatted %s: %d MiB, block size %d, fragment size %d, %d cylinder groups, %d inodes\n",
		abs, size>>20, sb.Bsize, sb.Fsize, sb.Ncg, int64(sb.Ncg)*int64(sb.Ipg))

	dev, err = blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		return exitf(1, "%v", err)
	}
	defer dev.Close()
	fs, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		return exitf(1, "open %s: %v", img, err)
	}
	defer fs.Close()
	fmt.Println("\nroot directory (ufs2 ls -l):")
	if err := tools.List(fs, "/", tools.ListOptions{Long: true}, os.Stdout); err != nil {
		return exitf(1, "%v", err)
	}
	var st syscall.Stat_t
	if syscall.Stat(img, &st) == nil {
		fmt.Printf("\nthe image is sparse: %d MiB long, %d KiB written on the host\n", st.Size>>20, st.Blocks/2)
	}
	fmt.Printf("next: ufs2 dumpfs %s | less; sleuthkit's fsstat -f ufs2 %s\n", img, img)
	return nil
}
