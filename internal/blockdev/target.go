package blockdev

import (
	"os"
	"strconv"
	"strings"
)

// maxPartition bounds N in PATH@N. GPT tables hold 128 entries by default and
// rarely more; the bound only keeps absurd numbers out of messages.
const maxPartition = 1 << 16

// ParseTarget splits a target into the path to open and the partition number
// (0 for the whole file or device).
//
// The target is PATH@N when it ends in '@' and decimal digits and no file
// named by the whole target exists; an existing file always wins, so a file
// whose name happens to end in @2 stays reachable. Anything else is a plain
// path, even if it contains '@'. ParseTarget checks that the path is
// non-empty and N is in range; it does not check that PATH exists.
func ParseTarget(target string) (path string, partition int, err error) {
	if target == "" {
		return "", 0, errorf(ErrBadTarget, "empty target: name an image file, a block device, or IMAGE@N for partition N")
	}
	if _, err := os.Stat(target); err == nil {
		return target, 0, nil
	}
	at := strings.LastIndexByte(target, '@')
	if at < 0 {
		return target, 0, nil
	}
	base, num := target[:at], target[at+1:]
	if num == "" {
		return "", 0, errorf(ErrBadTarget, "%s: missing partition number after '@' (use %s1 for the first partition)", target, target)
	}
	if strings.Trim(num, "0123456789") != "" {
		// Not PATH@N: a plain path that contains '@'.
		return target, 0, nil
	}
	if base == "" {
		return "", 0, errorf(ErrBadTarget, "%s: missing path before '@' (write IMAGE@N)", target)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n > maxPartition {
		return "", 0, errorf(ErrBadTarget, "%s: partition number %s is too large", target, num)
	}
	if n == 0 {
		return "", 0, errorf(ErrBadTarget, "%s: partitions are numbered from 1 (use %s@1 for the first, or %s for the whole image)", target, base, base)
	}
	return base, n, nil
}
