//go:build !linux

package newfs

import "github.com/ufs2/ufs2/internal/blockdev"

// WithDiscard is only implemented on Linux.
func WithDiscard(dev blockdev.Device, path string) (blockdev.Device, error) {
	return nil, errf(1, ErrUnsupported, "%s: discarding is only implemented on Linux", path)
}
