package mount

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrOption marks a mount option this program does not know or cannot
// honour.
var ErrOption = errors.New("mount: bad mount option")

// Options are the settings of one mount. The zero value is a read-write
// mount with this package's defaults; ParseOptions fills it from a
// mount(8)-style option list.
type Options struct {
	// Target is the image or device mounted, as given (OpenTarget sets
	// it): the control channel's record names it, so that commands given
	// the image find the mount.
	Target string
	// Snapshot mounts the snapshot of that name (in /.snap) of the
	// filesystem on the target, read-only; through the live mount's
	// control channel when a mount holds the target.
	Snapshot string
	// ReadOnly opens the filesystem read-only and mounts it MS_RDONLY.
	ReadOnly bool
	// Force mounts read-write a filesystem that needs fsck (not
	// unmounted cleanly and without soft updates, or marked as needing
	// fsck) instead of refusing, as FreeBSD's mount -f does; it stays
	// marked not clean after the unmount (ufs.Options.Force).
	Force bool
	// AllowOther lets users other than the one who mounted use the
	// mount (permissions are still checked by the kernel).
	AllowOther bool
	// NoACL turns off the kernel's POSIX ACL support; ACL attributes are
	// then plain extended attributes.
	NoACL bool
	// Flags are the MS_* flags for mount(2) beyond MS_RDONLY. The zero
	// value means MS_NOSUID|MS_NODEV, as FUSE mounts usually have; see
	// DefaultFlags.
	Flags uintptr
	// FsName is the mount's source as /proc/mounts shows it; "" gives
	// "ufs2".
	FsName string
	// Timeout is the kernel's entry and attribute cache time; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// SyncDelay is how often a read-write mount writes everything dirty
	// (FreeBSD's syncer); 0 means DefaultSyncDelay, negative never (only
	// fsync, sync(2) and unmount write then).
	SyncDelay time.Duration
	// ReadAheadKB sets the mount's read_ahead_kb (in KiB); 0 means
	// DefaultReadAheadKB, negative leaves the kernel's default.
	ReadAheadKB int
	// Debug logs every FUSE request and reply to Logger at debug level.
	Debug bool
	// Logger receives errors the kernel only sees as EIO (corruption,
	// device errors) and, with Debug, the request trace; nil discards.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultTimeout     = time.Second
	DefaultReadAheadKB = 1024
	DefaultSyncDelay   = 30 * time.Second
	// DefaultFlags are the mount flags when Options.Flags is 0.
	DefaultFlags = syscall.MS_NOSUID | syscall.MS_NODEV
	// maxWrite is the largest READ and WRITE request (FUSE's limit with
	// max_pages 256).
	maxWrite = 1 << 20
)

// flagOptions are mount(8)'s generic options that set or clear MS_* flags.
var flagOptions = map[string]struct {
	set   bool
	flags uintptr
}{
	"suid":        {false, syscall.MS_NOSUID},
	"nosuid":      {true, syscall.MS_NOSUID},
	"dev":         {false, syscall.MS_NODEV},
	"nodev":       {true, syscall.MS_NODEV},
	"exec":        {false, syscall.MS_NOEXEC},
	"noexec":      {true, syscall.MS_NOEXEC},
	"atime":       {false, syscall.MS_NOATIME},
	"noatime":     {true, syscall.MS_NOATIME},
	"diratime":    {false, syscall.MS_NODIRATIME},
	"nodiratime":  {true, syscall.MS_NODIRATIME},
	"relatime":    {true, syscall.MS_RELATIME},
	"norelatime":  {false, syscall.MS_RELATIME},
	"strictatime": {true, syscall.MS_STRICTATIME},
	"sync":        {true, syscall.MS_SYNCHRONOUS},
	"async":       {false, syscall.MS_SYNCHRONOUS},
	"dirsync":     {true, syscall.MS_DIRSYNC},
}

// ignoredOptions are options of mount(8) and fstab that concern mount(8)
// itself (or systemd), not the filesystem.
var ignoredOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "nofail": true, "_netdev": true,
	"loop": true, "default_permissions": true,
}

// ParseOptions applies a comma-separated option list (as given to -o) to
// o. Known options: ro, rw, force, allow_other, acl, noacl, debug,
// fsname=NAME, snapshot=NAME (mount that snapshot, read-only),
// timeout=SECONDS, syncdelay=SECONDS (0: never),
// readahead=KIB, and mount(8)'s generic
// ones (suid, dev, exec, atime, noatime, relatime, sync, ...; defaults,
// noauto, nofail, user, _netdev, x-* and comment=* are accepted and
// ignored; default_permissions is always on). With sloppy (mount -s),
// unknown options are ignored instead of failing with ErrOption.
func ParseOptions(o *Options, list string, sloppy bool) error {
	if o.Flags == 0 {
		o.Flags = DefaultFlags
	}
	for _, opt := range strings.Split(list, ",") {
		key, val, hasVal := strings.Cut(opt, "=")
		switch {
		case opt == "":
		case opt == "ro":
			o.ReadOnly = true
		case opt == "rw":
			o.ReadOnly = false
		case opt == "force":
			o.Force = true
		case opt == "allow_other":
			o.AllowOther = true
		case opt == "acl":
			o.NoACL = false
		case opt == "noacl":
			o.NoACL = true
		case opt == "debug":
			o.Debug = true
		case key == "fsname" && hasVal:
			o.FsName = val
		case key == "snapshot" && hasVal && val != "":
			o.Snapshot = val
		case key == "timeout" && hasVal:
			secs, err := strconv.ParseFloat(val, 64)
			if err != nil || secs < 0 || secs > 3600 {
				return fmt.Errorf("%w: timeout=%s: want seconds between 0 and 3600", ErrOption, val)
			}
			o.Timeout = time.Duration(secs * float64(time.Second))
			if o.Timeout == 0 {
				o.Timeout = -1 // explicitly no caching
			}
		case key == "syncdelay" && hasVal:
			secs, err := strconv.ParseFloat(val, 64)
			if err != nil || secs < 0 || secs > 3600 {
				return fmt.Errorf("%w: syncdelay=%s: want seconds between 0 and 3600", ErrOption, val)
			}
			o.SyncDelay = time.Duration(secs * float64(time.Second))
			if o.SyncDelay == 0 {
				o.SyncDelay = -1 // never
			}
		case key == "readahead" && hasVal:
			kb, err := strconv.Atoi(val)
			if err != nil || kb < 0 || kb > 1<<20 {
				return fmt.Errorf("%w: readahead=%s: want KiB between 0 and %d", ErrOption, val, 1<<20)
			}
			o.ReadAheadKB = kb
			if kb == 0 {
				o.ReadAheadKB = -1
			}
		case ignoredOptions[opt], strings.HasPrefix(opt, "x-"), key == "comment":
		default:
			if f, ok := flagOptions[opt]; ok {
				if f.set {
					o.Flags |= f.flags
				} else {
					o.Flags &^= f.flags
				}
				if o.Flags == 0 {
					o.Flags = syscall.MS_MGC_VAL // no flags, yet not the zero value
				}
				continue
			}
			if !sloppy {
				return fmt.Errorf("%w: %q", ErrOption, opt)
			}
		}
	}
	return nil
}

// timeout is the configured cache time.
func (o *Options) timeout() time.Duration {
	switch {
	case o.Timeout == 0:
		return DefaultTimeout
	case o.Timeout < 0:
		return 0
	}
	return o.Timeout
}

// syncDelay is the configured syncer period, 0 for none.
func (o *Options) syncDelay() time.Duration {
	switch {
	case o.SyncDelay == 0:
		return DefaultSyncDelay
	case o.SyncDelay < 0:
		return 0
	}
	return o.SyncDelay
}

// mountFlags are the MS_* flags passed to mount(2).
func (o *Options) mountFlags() uintptr {
	f := o.Flags
	if f == 0 {
		f = DefaultFlags
	}
	if o.ReadOnly {
		f |= syscall.MS_RDONLY
	}
	return f
}
