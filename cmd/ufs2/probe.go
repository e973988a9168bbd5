package main

// What a target already holds, for newfs's check before it writes over
// it (mke2fs's "contains a ext4 file system ... Proceed anyway?").

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// foundFS describes a filesystem found on a target.
type foundFS struct {
	Type       string // "UFS2", "UFS1", "ext4", or blkid's TYPE
	Label      string // volume label, if any
	LastMount  string // where it was last mounted, if recorded
	Kind       string // "" for a filesystem, "signature" or "partition table" (blkid)
	DetectedBy string // "" for our own probe, "blkid" for blkid -p
}

// String is the phrase used in newfs's messages: "a UFS2 filesystem
// (label root, last mounted on /mnt)".
func (f foundFS) String() string {
	kind := f.Kind
	if kind == "" {
		kind = "filesystem"
	}
	s := article(f.Type) + " " + f.Type + " " + kind
	if f.DetectedBy == "blkid" {
		s += " (blkid -p)"
	}
	var extra []string
	if f.Label != "" {
		extra = append(extra, "label "+f.Label)
	}
	if f.LastMount != "" {
		extra = append(extra, "last mounted on "+f.LastMount)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// article is "an" before a name read with a vowel sound first ("an ext4",
// "an xfs"), else "a" ("a UFS2", "a swap").
func article(name string) string {
	if name != "" && strings.ContainsRune("aeiox", rune(name[0])) {
		return "an"
	}
	return "a"
}

// ext2/3/4 superblock fields (struct ext2_super_block), offsets within the
// superblock, which starts 1024 bytes into the device.
const (
	extSuperOffset   = 1024
	extMagicOff      = 56 // s_magic
	extMagic         = 0xEF53
	extCompatOff     = 92  // s_feature_compat
	extIncompatOff   = 96  // s_feature_incompat
	extVolumeNameOff = 120 // s_volume_name[16]
	extLastMountOff  = 136 // s_last_mounted[64]
	extCompatJournal = 0x4 // EXT3_FEATURE_COMPAT_HAS_JOURNAL
	// Incompatible features only ext4 has: extents, 64bit, flex_bg.
	extIncompatExt4 = 0x40 | 0x80 | 0x200
	extIncompatJdev = 0x8 // EXT3_FEATURE_INCOMPAT_JOURNAL_DEV
)

// probeFS looks for a filesystem our own reading recognises on r: a UFS1
// or UFS2 superblock at any of the places FreeBSD looks, or an ext2, ext3
// or ext4 superblock. ok is false if there is none (or nothing could be
// read: a device too short to hold one).
func probeFS(r io.ReaderAt) (found foundFS, ok bool) {
	buf := make([]byte, ondisk.SuperblockSize)
	for _, off := range ondisk.SuperblockSearch {
		if n, _ := r.ReadAt(buf, off); n < len(buf) {
			continue
		}
		sb, _ := ondisk.DecodeSuperblock(buf)
		if sb == nil {
			continue
		}
		switch uint32(sb.Magic) {
		case ondisk.FSUFS2Magic, ondisk.FSUFS2EAMagic:
			return foundFS{Type: "UFS2", Label: sb.VolumeName(), LastMount: sb.MountPoint()}, true
		case ondisk.FSUFS1Magic:
			return foundFS{Type: "UFS1", Label: sb.VolumeName(), LastMount: sb.MountPoint()}, true
		}
	}
	ext := make([]byte, 1024)
	if n, _ := r.ReadAt(ext, extSuperOffset); n == len(ext) &&
		binary.LittleEndian.Uint16(ext[extMagicOff:]) == extMagic {
		compat := binary.LittleEndian.Uint32(ext[extCompatOff:])
		incompat := binary.LittleEndian.Uint32(ext[extIncompatOff:])
		f := foundFS{Type: "ext2",
			Label:     cString(ext[extVolumeNameOff : extVolumeNameOff+16]),
			LastMount: cString(ext[extLastMountOff : extLastMountOff+64]),
		}
		switch {
		case incompat&extIncompatJdev != 0:
			f.Type = "ext journal"
		case incompat&extIncompatExt4 != 0:
			f.Type = "ext4"
		case compat&extCompatJournal != 0:
			f.Type = "ext3"
		}
		return f, true
	}
	return foundFS{}, false
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// blkidProbe asks blkid -p (low-level probing, no cache) what path holds,
// for the filesystems, RAID members, swap and the like our own probe does
// not know. ok is false when blkid finds nothing or is not installed.
func blkidProbe(path string) (found foundFS, ok bool) {
	bin, err := exec.LookPath("blkid")
	if err != nil {
		return foundFS{}, false
	}
	out, err := exec.Command(bin, "-p", "-o", "export", path).Output()
	if err != nil {
		return foundFS{}, false // 2: nothing found; anything else: cannot tell
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = v
		}
	}
	typ := vals["TYPE"]
	if typ == "" {
		// A partition table has PTTYPE and no TYPE.
		if pt := vals["PTTYPE"]; pt != "" {
			return foundFS{Type: pt, Kind: "partition table", DetectedBy: "blkid"}, true
		}
		return foundFS{}, false
	}
	return foundFS{Type: typ, Kind: "signature", Label: vals["LABEL"], DetectedBy: "blkid"}, true
}

// blkidProbeDevice is blkidProbe for a device blkid cannot open by name
// (a partition PATH@N inside an image): a sparse copy of its first 4 MiB
// and last 1 MiB, where signatures live, is probed instead.
func blkidProbeDevice(dev blockdev.Device) (foundFS, bool) {
	size := dev.Size()
	f, err := os.CreateTemp("", "ufs2-newfs-probe-")
	if err != nil {
		return foundFS{}, false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if f.Truncate(size) != nil {
		return foundFS{}, false
	}
	buf := make([]byte, 1<<20)
	for _, start := range []int64{0, 1 << 20, 2 << 20, 3 << 20, size - 1<<20} {
		if start < 0 || start >= size {
			continue
		}
		n, _ := dev.ReadAt(buf[:min(int64(len(buf)), size-start)], start)
		if _, err := f.WriteAt(buf[:n], start); err != nil {
			return foundFS{}, false
		}
	}
	return blkidProbe(f.Name())
}

// isTerminal reports whether f is a terminal (TCGETS works on it), as
// isatty(3) decides; /dev/null is a character device but no terminal.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return e == 0
}

// askYes prints question on stderr and reads one line from stdin; only y
// or yes (any case) is yes.
func askYes(question string) bool {
	fmt.Fprintf(os.Stderr, "%s (y,N) ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
