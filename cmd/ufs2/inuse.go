package main

import (
	"fmt"
	"os"

	"github.com/ufs2/ufs2/internal/blockdev"
)

// openForReading opens TARGET read-only for a command that only reads
// (dumpfs, fsck -n, ls, get). An image that a live mount (or another
// command) holds for writing is read anyway, as FreeBSD's dumpfs and
// fsck -n read a mounted filesystem, with a warning on stderr saying who
// holds it and that what is on disk may not be consistent.
func openForReading(cmd, target string) (blockdev.Device, error) {
	dev, err := blockdev.Open(target, blockdev.Options{ReadOnly: true, AllowInUse: true})
	if err != nil {
		return nil, err
	}
	if warning, ok := blockdev.InUse(dev); ok {
		fmt.Fprintf(os.Stderr, "ufs2 %s: warning: %s\n", cmd, warning)
	}
	return dev, nil
}
