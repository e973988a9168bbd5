package mount

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Sentinel errors of Mount and OpenTarget.
var (
	// ErrNeedsFsck: a read-write mount of a filesystem the engine will
	// not write (not clean without soft updates, or marked as needing
	// fsck) without -o force.
	ErrNeedsFsck = errors.New("mount: filesystem needs fsck")
	// ErrCannotWrite: a read-write mount of a filesystem the engine can
	// only read (a feature it does not maintain, a truncated device).
	ErrCannotWrite = errors.New("mount: filesystem cannot be mounted read-write")
	// ErrMountpoint: the mount point is missing or not a directory.
	ErrMountpoint = errors.New("mount: bad mount point")
	// ErrMount: the kernel refused the mount.
	ErrMount = errors.New("mount: mount failed")
)

// OpenTarget opens TARGET (an image, a device, or PATH@N) and the UFS2
// filesystem on it for a mount with options o, applying the mount
// policy: a read-write mount of a filesystem the engine refuses to write
// fails with ErrNeedsFsck (run fsck, or -o force) or ErrCannotWrite
// naming the reason; a read-only mount always works.
//
// With -o force a filesystem that only needs fsck is opened read-write
// anyway (ufs.Options.Force, FreeBSD's mount -f); it stays marked not
// clean, and the engine logs a warning.
func OpenTarget(target string, o *Options) (*ufs.FS, error) {
	o.Target = target
	if o.Snapshot != "" {
		// The control record of a snapshot's mount names no target: a
		// command given the image must find the live mount.
		o.Target = ""
		return openSnapshot(target, o)
	}
	dev, err := blockdev.Open(target, blockdev.Options{ReadOnly: o.ReadOnly})
	if err != nil {
		return nil, err
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: o.ReadOnly, Force: o.Force, Logger: o.Logger})
	if err != nil {
		dev.Close()
		return nil, err
	}
	if reason := fsys.ReadOnlyReason(); !o.ReadOnly && reason != "" {
		needsFsck := fsys.NeedsFsck()
		fsys.Close()
		// The reason's own "run fsck" is said below, once, as a command.
		reason = strings.ReplaceAll(reason, "; run fsck", "")
		if needsFsck {
			return nil, fmt.Errorf("%w: %s: %s; run ufs2 fsck %s, mount with -o ro, or with -o force to write it anyway", ErrNeedsFsck, target, reason, target)
		}
		return nil, fmt.Errorf("%w: %s: %s; mount it with -o ro", ErrCannotWrite, target, reason)
	}
	return fsys, nil
}

func logger(o *Options) *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Server is one mounted filesystem.
type Server struct {
	srv *fuse.Server
	m   *mountFS
	dir string
	log *slog.Logger
	ro  bool

	once     sync.Once
	closeErr error
	ctl      *control // the control channel (control.go); nil if it could not start

	// The syncer writes everything dirty every syncdelay (FreeBSD's
	// syncer); closing stopSync stops it, syncDone says it stopped.
	stopSync chan struct{}
	syncDone chan struct{}
}

// syncer runs the engine's Sync every period on a read-write mount, as
// FreeBSD's syncer daemon does: the engine writes dirty buffers when it
// holds too many, but the summaries and the superblock only on Sync.
func (s *Server) syncer(period time.Duration) {
	defer close(s.syncDone)
	if s.m.weng == nil || period <= 0 {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-t.C:
			if err := s.m.weng.Sync(); err != nil {
				s.log.Error("periodic sync failed", "op", "sync", "err", err)
			}
		}
	}
}

// Mount mounts eng on dir and serves it until the filesystem is
// unmounted (umount, fusermount3 -u, or Server.Unmount); Wait then closes
// the engine. It returns once the kernel has finished the FUSE handshake,
// so the mount is usable.
//
// As root it calls mount(2) directly; otherwise go-fuse falls back to
// fusermount3. The engine is not closed if Mount fails.
func Mount(dir string, eng Engine, o Options) (*Server, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMountpoint, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrMountpoint, dir)
	}
	lg := logger(&o)
	weng, canWrite := eng.(WriteEngine)
	switch {
	case eng.ReadOnly():
		o.ReadOnly = true
	case !o.ReadOnly && !canWrite:
		lg.Warn("mounting read-only: this engine has no write operations", "dir", dir)
		o.ReadOnly = true
	}
	sb := eng.Superblock()
	m := &mountFS{eng: eng, log: lg, noACL: o.NoACL, bsize: uint32(sb.Bsize)}
	m.refs.n = map[ondisk.Ino]int{}
	if !o.ReadOnly {
		m.weng = weng
	}
	root := &node{m: m}
	rootSt, err := eng.Stat(eng.Root())
	if err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}

	timeout := o.timeout()
	fsName := o.FsName
	if fsName == "" {
		fsName = "ufs2"
	}
	mo := fuse.MountOptions{
		AllowOther:       o.AllowOther,
		Options:          []string{"default_permissions"},
		MaxWrite:         maxWrite,
		MaxBackground:    64,
		FsName:           fsName,
		Name:             "ufs2",
		DisableSplice:    true,
		DirectMount:      true,
		DirectMountFlags: o.mountFlags(),
		EnableAcl:        !o.NoACL,
		// Every change goes through this mount's kernel: its page cache
		// is never stale, whatever mtime a getattr reports.
		ExplicitDataCacheControl: true,
		// Async direct I/O keeps deep queues parallel; export support
		// lets the kernel resolve (node ID, generation) file handles.
		// The umask is applied here, with default ACLs (see node.plan).
		ExtraCapabilities: fuse.CAP_ASYNC_DIO | fuse.CAP_EXPORT_SUPPORT | fuse.CAP_DONT_MASK,
		Debug:             o.Debug,
		Logger:            log.New(slogWriter{lg}, "", 0),
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	fo := &fs.Options{
		MountOptions:    mo,
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true, // mode 0000 means 0000
		ExternalNodeID:  true, // node ID = inode number
		RootStableAttr:  &fs.StableAttr{Ino: uint64(eng.Root()), Gen: uint64(rootSt.Gen)},
		Logger:          log.New(slogWriter{lg}, "", 0),
	}
	// fs.Mount, with the raw filesystem wrapped to apply umasks.
	raw := &umaskFS{RawFileSystem: fs.NewNodeFS(root, fo), m: m}
	srv, err := fuse.NewServer(raw, dir, &fo.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMount, dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMount, dir, err)
	}
	s := &Server{srv: srv, m: m, dir: dir, log: lg, ro: o.ReadOnly, stopSync: make(chan struct{}), syncDone: make(chan struct{})}
	if s.ctl, err = startControl(m, dir, o.Target); err != nil {
		lg.Warn("no control channel: commands given this mount point cannot reach it", "err", err)
	}
	go s.syncer(o.syncDelay())
	if o.ReadAheadKB >= 0 {
		kb := o.ReadAheadKB
		if kb == 0 {
			kb = DefaultReadAheadKB
		}
		if err := setReadAhead(dir, kb); err != nil {
			lg.Warn("cannot raise read-ahead", "dir", dir, "err", err)
		}
	}
	return s, nil
}

// setReadAhead sets read_ahead_kb of the mount's backing device info
// (/sys/class/bdi/MAJOR:MINOR), which go-fuse's MaxReadAhead can only
// lower.
func setReadAhead(dir string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(strconv.Itoa(kb)), 0)
}

// ReadOnly reports whether the mount is read-only (asked for, or because
// the filesystem or the engine cannot be written).
func (s *Server) ReadOnly() bool { return s.ro }

// Dir is the mount point.
func (s *Server) Dir() string { return s.dir }

// Wait blocks until the filesystem is unmounted, then closes the engine
// (writing everything dirty and marking the filesystem clean) and returns
// what that reported. It may be called more than once.
func (s *Server) Wait() error {
	s.srv.Wait()
	s.once.Do(func() {
		if s.ctl != nil {
			s.ctl.stop()
		}
		close(s.stopSync)
		<-s.syncDone
		s.m.dropRefs()
		s.closeErr = s.m.eng.Close()
		if s.closeErr != nil {
			s.log.Error("closing the filesystem after unmount", "err", s.closeErr)
		}
	})
	return s.closeErr
}

// Unmount unmounts the filesystem. If it is busy, it is detached from the
// namespace (MNT_DETACH, umount -l) and the server goes on serving the
// files still open until they are closed. Wait returns after either.
func (s *Server) Unmount() error {
	err := s.srv.Unmount()
	if err == nil {
		return nil
	}
	if derr := unix.Unmount(s.dir, unix.MNT_DETACH); derr != nil {
		if errors.Is(derr, syscall.EINVAL) {
			return nil // no longer mounted: a concurrent umount won
		}
		return fmt.Errorf("unmount %s: %w (lazy unmount: %w)", s.dir, err, derr)
	}
	s.log.Warn("mount point was busy; detached it, serving open files until they are closed", "dir", s.dir)
	return nil
}

// slogWriter routes go-fuse's log.Logger output to a slog.Logger at debug
// level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Log(context.Background(), slog.LevelDebug, strings.TrimRight(string(p), "\n"), "op", "fuse")
	return len(p), nil
}

// openSnapshot opens snapshot o.Snapshot of the filesystem on target,
// read-only: through the control channel of the live mount that holds
// target, if one does, else from the image (a snapshot is a frozen
// filesystem of its own, which the engine opens like any other).
func openSnapshot(target string, o *Options) (*ufs.FS, error) {
	if !o.ReadOnly {
		return nil, fmt.Errorf("%w: snapshot=%s: a snapshot is read-only; add ro", ErrOption, o.Snapshot)
	}
	var dev blockdev.Device
	if rec, ok := FindMount(target); ok {
		cl, err := Dial(rec)
		if err != nil {
			return nil, err
		}
		var snaps []ufs.Snapshot
		if err := cl.Call("snapshot.list", nil, &snaps); err != nil {
			cl.Close()
			return nil, err
		}
		for _, s := range snaps {
			if s.Name == o.Snapshot {
				dev = closing{cl.SnapshotDevice(s.Name, s.Size), cl.Close}
			}
		}
		if dev == nil {
			cl.Close()
			return nil, fmt.Errorf("%s has no snapshot %q (ufs2 snapshot list %s)", target, o.Snapshot, target)
		}
	} else {
		raw, err := blockdev.Open(target, blockdev.Options{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		live, err := ufs.Open(raw, ufs.Options{ReadOnly: true, Logger: o.Logger})
		if err != nil {
			raw.Close()
			return nil, err
		}
		s, err := live.SnapshotByName(o.Snapshot)
		if err != nil {
			live.Close()
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		dev = closing{live.SnapshotDevice(s), live.Close}
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true, Logger: o.Logger})
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("snapshot %s of %s: %w", o.Snapshot, target, err)
	}
	return fsys, nil
}

// closing is a device whose Close also runs done (what it reads through).
type closing struct {
	blockdev.Device
	done func() error
}

func (c closing) Close() error {
	c.Device.Close()
	return c.done()
}
