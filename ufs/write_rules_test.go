package ufs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// diskSuperblock reads the superblock as it is on the device.
func diskSuperblock(t *testing.T, dev blockdev.Device) *ondisk.Superblock {
	t.Helper()
	sb, _, err := ondisk.FindSuperblock(dev)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestCleanFlag: opening read-write marks the superblock on disk not
// clean at once; Sync keeps it so; Close marks it clean. A filesystem
// opened unclean (allowed with soft updates) gets FS_UNCLEAN and is left
// unclean by Close, as FreeBSD does.
func TestCleanFlag(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	if sb := diskSuperblock(t, m.dev); sb.Clean != 0 || sb.Flags&ondisk.FSUnclean != 0 {
		t.Fatalf("after open: fs_clean %d flags 0x%x", sb.Clean, sb.Flags)
	}
	mustIno(t)(m.fs.Create(m.fs.Root(), "f", 0o644, 0, 0))
	must(t, m.fs.Sync())
	if sb := diskSuperblock(t, m.dev); sb.Clean != 0 || sb.Cstotal != m.fs.Superblock().Cstotal {
		t.Fatalf("after sync: fs_clean %d, cstotal %+v (in core %+v)", sb.Clean, sb.Cstotal, m.fs.Superblock().Cstotal)
	}
	must(t, m.fs.Close())
	sb := diskSuperblock(t, m.dev)
	if sb.Clean != 1 || sb.Flags&ondisk.FSUnclean != 0 {
		t.Fatalf("after close: fs_clean %d flags 0x%x", sb.Clean, sb.Flags)
	}
	if err := sb.VerifyHash(m.dev.Bytes()[diskSBLoc(t, m.dev):]); err != nil {
		t.Errorf("superblock hash: %v", err)
	}
	if err := m.fs.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}

	// Soft updates: the flag stays on disk while open (the engine keeps
	// soft updates' promise), and after a clean Close.
	e := editDev(t, m.dev)
	e.sb.Flags |= ondisk.FSDoSoftdep
	e.put()
	m.open()
	if m.fs.sd == nil {
		t.Fatal("FS_DOSOFTDEP set but the engine runs without soft updates")
	}
	if sb := diskSuperblock(t, m.dev); sb.Flags&ondisk.FSDoSoftdep == 0 || sb.Clean != 0 {
		t.Errorf("open with soft updates: flags 0x%x fs_clean %d on disk", sb.Flags, sb.Clean)
	}
	must(t, m.fs.Close())
	if sb := diskSuperblock(t, m.dev); sb.Flags&ondisk.FSDoSoftdep == 0 || sb.Clean != 1 {
		t.Errorf("after close: flags 0x%x fs_clean %d on disk", sb.Flags, sb.Clean)
	}

	// Without them (NoSoftUpdates) the flag is off on disk while open:
	// the synchronous ordering does not keep that promise.
	m.opts.NoSoftUpdates = true
	m.open()
	if m.fs.sd != nil {
		t.Fatal("NoSoftUpdates: the engine runs with soft updates")
	}
	if sb := diskSuperblock(t, m.dev); sb.Flags&ondisk.FSDoSoftdep != 0 || sb.Clean != 0 {
		t.Errorf("open without soft updates: flags 0x%x fs_clean %d on disk", sb.Flags, sb.Clean)
	}
	must(t, m.fs.Close())
	if sb := diskSuperblock(t, m.dev); sb.Flags&ondisk.FSDoSoftdep == 0 || sb.Clean != 1 {
		t.Errorf("after close: flags 0x%x fs_clean %d on disk", sb.Flags, sb.Clean)
	}
	m.opts.NoSoftUpdates = false

	// Unclean with soft updates: opened read-write, FS_UNCLEAN, left
	// unclean by Close (fsck -p finds only leaks), and opened read-write
	// again, as FreeBSD mounts it before its background check.
	e = editDev(t, m.dev)
	e.sb.Clean = 0
	e.sb.Flags |= ondisk.FSDoSoftdep
	e.put()
	m.open()
	if got := m.fs.Superblock().Flags; got&ondisk.FSUnclean == 0 {
		t.Errorf("FS_UNCLEAN not set for an unclean filesystem: 0x%x", got)
	}
	must(t, m.fs.Close())
	if sb := diskSuperblock(t, m.dev); sb.Clean != 0 || sb.Flags&ondisk.FSDoSoftdep == 0 {
		t.Errorf("an unclean filesystem after Close: fs_clean %d flags 0x%x", sb.Clean, sb.Flags)
	}
	fsys, err := Open(m.dev, Options{})
	must(t, err)
	if fsys.ReadOnly() {
		t.Errorf("unclean soft-updates filesystem reopened read-only: %q", fsys.ReadOnlyReason())
	}
	fsys.Close()

	// Without soft updates an unclean filesystem must be checked first.
	e = editDev(t, m.dev)
	e.sb.Clean = 0
	e.sb.Flags &^= ondisk.FSDoSoftdep
	e.put()
	fsys, err = Open(m.dev, Options{})
	must(t, err)
	if !fsys.ReadOnly() || !strings.Contains(fsys.ReadOnlyReason(), "fsck") || !fsys.NeedsFsck() {
		t.Errorf("reopened read-only %v (needs fsck %v): %q", fsys.ReadOnly(), fsys.NeedsFsck(), fsys.ReadOnlyReason())
	}
	fsys.Close()
}

// TestForceOpen: Options.Force opens read-write a filesystem that only
// needs fsck, as FreeBSD's mount -f: it writes, and Close leaves it not
// clean (FS_UNCLEAN, fs_clean 0) so that the next ordinary open still
// asks for fsck. Force does not override features this code does not
// maintain.
func TestForceOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*ondisk.Superblock)
		force bool // Force opens it read-write
	}{
		{"unclean without soft updates", func(sb *ondisk.Superblock) { sb.Clean = 0; sb.Flags &^= ondisk.FSDoSoftdep }, true},
		{"marked as needing fsck", func(sb *ondisk.Superblock) { sb.Flags |= ondisk.FSNeedsFsck }, true},
		{"journaled soft updates", func(sb *ondisk.Superblock) { sb.Clean = 0; sb.Flags |= ondisk.FSSuj }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemFS(t, geomSmall, Options{})
			want := []byte("written before the crash")
			ino := mustIno(t)(m.fs.Create(m.fs.Root(), "old", 0o644, 0, 0))
			if _, err := m.fs.WriteAt(ino, want, 0); err != nil {
				t.Fatal(err)
			}
			must(t, m.fs.Close())
			e := editDev(t, m.dev)
			tc.edit(e.sb)
			e.put()
			before := diskSuperblock(t, m.dev)

			fsys, err := Open(m.dev, Options{})
			must(t, err)
			if !fsys.ReadOnly() || fsys.NeedsFsck() != tc.force {
				t.Errorf("without Force: read-only %v, needs fsck %v (%q)", fsys.ReadOnly(), fsys.NeedsFsck(), fsys.ReadOnlyReason())
			}
			must(t, fsys.Close())

			fsys, err = Open(m.dev, Options{Force: true})
			must(t, err)
			defer fsys.Close()
			if fsys.ReadOnly() == tc.force {
				t.Fatalf("with Force: read-only %v (%q)", fsys.ReadOnly(), fsys.ReadOnlyReason())
			}
			if !tc.force {
				if sb := diskSuperblock(t, m.dev); sb.Clean != before.Clean || sb.Flags != before.Flags {
					t.Errorf("a refused forced open changed the superblock: fs_clean %d flags 0x%x", sb.Clean, sb.Flags)
				}
				return
			}
			f := mustIno(t)(fsys.Create(fsys.Root(), "new", 0o644, 0, 0))
			if _, err := fsys.WriteAt(f, []byte("forced"), 0); err != nil {
				t.Fatal(err)
			}
			must(t, fsys.Close())
			sb := diskSuperblock(t, m.dev)
			if sb.Clean != 0 || sb.Flags&ondisk.FSUnclean == 0 && before.Flags&ondisk.FSNeedsFsck == 0 {
				t.Errorf("after a forced session: fs_clean %d flags 0x%x, want it still not clean", sb.Clean, sb.Flags)
			}
			if before.Flags&ondisk.FSNeedsFsck != 0 && sb.Flags&ondisk.FSNeedsFsck == 0 {
				t.Errorf("FS_NEEDSFSCK dropped by a forced session: flags 0x%x", sb.Flags)
			}
			fsys, err = Open(m.dev, Options{ReadOnly: true})
			must(t, err)
			defer fsys.Close()
			for name, data := range map[string]string{"old": string(want), "new": "forced"} {
				ino, err := fsys.Lookup(fsys.Root(), name)
				must(t, err)
				got := make([]byte, len(data))
				if n, err := fsys.ReadAt(ino, got, 0); n != len(got) || string(got) != data {
					t.Errorf("%s: read %q, %v; want %q", name, got[:n], err, data)
				}
			}
			if again, err := Open(m.dev, Options{}); err != nil || !again.ReadOnly() || !again.NeedsFsck() {
				t.Errorf("ordinary open after a forced session: err %v, read-only %v", err, again != nil && again.ReadOnly())
			} else {
				again.Close()
			}
		})
	}
}

func diskSBLoc(t *testing.T, dev blockdev.Device) int64 {
	_, loc, err := ondisk.FindSuperblock(dev)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// devEditor patches the superblock of a device.
type devEditor struct {
	dev blockdev.Device
	sb  *ondisk.Superblock
	loc int64
}

func editDev(t *testing.T, dev blockdev.Device) *devEditor {
	sb, loc, err := ondisk.FindSuperblock(dev)
	if err != nil {
		t.Fatal(err)
	}
	return &devEditor{dev, sb, loc}
}

func (e *devEditor) put() { e.dev.WriteAt(e.sb.EncodeWithHash(), e.loc) }

// TestUnsupportedCheckHashesCleared: fs_metackhash bits this code does not
// maintain (CK_DIR, CK_INDIR) do not stop a read-write open: they are
// cleared, as FreeBSD's kernel clears them, and the superblock written
// says so.
func TestUnsupportedCheckHashesCleared(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	must(t, m.fs.Close())
	e := editDev(t, m.dev)
	e.sb.Metackhash |= ondisk.CKDir | ondisk.CKIndir
	e.put()
	m.open()
	if got := m.fs.Superblock().Metackhash; got != ondisk.CKSupported {
		t.Errorf("in-core fs_metackhash 0x%x, want 0x%x", got, ondisk.CKSupported)
	}
	mustIno(t)(m.fs.Mkdir(m.fs.Root(), "d", 0o755, 0, 0))
	must(t, m.fs.Close())
	if got := diskSuperblock(t, m.dev).Metackhash; got != ondisk.CKSupported {
		t.Errorf("on-disk fs_metackhash 0x%x, want 0x%x", got, ondisk.CKSupported)
	}
}

// TestCheckHashesKept: with every check-hash on, what the engine writes
// verifies: each cylinder group, each allocated inode, the superblock.
func TestCheckHashesKept(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	d := mustIno(t)(fsys.Mkdir(fsys.Root(), "d", 0o755, 1, 2))
	for i := range 300 {
		f := mustIno(t)(fsys.Create(d, "f"+itoa(i), 0o644, 0, 0))
		if _, err := fsys.WriteAt(f, bytes.Repeat([]byte{byte(i)}, 100+i*37), 0); err != nil {
			t.Fatal(err)
		}
	}
	must(t, fsys.Close())
	raw := m.dev.Bytes()
	sb, _, err := ondisk.FindSuperblock(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("superblock: %v", err)
	}
	if sb.Metackhash != ondisk.CKSupported {
		t.Fatalf("fs_metackhash 0x%x", sb.Metackhash)
	}
	inodes := 0
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		off := sb.FragOffset(sb.Cgtod(c))
		cg, err := ondisk.DecodeCg(sb, c, raw[off:off+int64(sb.Cgsize)])
		if err != nil {
			t.Fatal(err)
		}
		if err := cg.VerifyHash(); err != nil {
			t.Errorf("cg %d: %v", c, err)
		}
		for i := int64(0); i < int64(cg.Initediblk); i++ {
			ino := ondisk.Ino(int64(c)*int64(sb.Ipg) + i)
			o := sb.InoOffset(ino)
			if err := ondisk.VerifyDinodeHash(sb, raw[o:o+ondisk.DinodeSize]); err != nil {
				t.Errorf("inode %d: %v", ino, err)
			}
			if cg.InodeUsed(i) {
				inodes++
			}
		}
	}
	if inodes < 302 {
		t.Errorf("only %d inodes in use", inodes)
	}
}

// TestGenerations: generation numbers are non-zero and random at
// allocation, survive a remount, and change when an inode number is
// reused.
func TestGenerations(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	gens := map[uint32]bool{}
	var first ondisk.Ino
	var firstGen uint32
	for i := range 50 {
		ino := mustIno(t)(fsys.Create(fsys.Root(), "f"+itoa(i), 0o644, 0, 0))
		st, _ := fsys.Stat(ino)
		if st.Gen == 0 {
			t.Fatalf("inode %d has generation 0", ino)
		}
		gens[st.Gen] = true
		if i == 0 {
			first, firstGen = ino, st.Gen
		}
	}
	if len(gens) < 45 {
		t.Errorf("only %d distinct generation numbers in 50", len(gens))
	}
	m.reopen()
	st, err := m.fs.Stat(first)
	must(t, err)
	if st.Gen != firstGen {
		t.Errorf("generation %d after remount, was %d", st.Gen, firstGen)
	}
	must(t, m.fs.Unlink(m.fs.Root(), "f0"))
	again := mustIno(t)(m.fs.Create(m.fs.Root(), "again", 0o644, 0, 0))
	if again != first {
		t.Fatalf("inode %d not reused (got %d): the generation check needs it reused", first, again)
	}
	if st, _ := m.fs.Stat(again); st.Gen == firstGen {
		t.Errorf("reused inode %d kept generation %d", again, firstGen)
	}
}

// TestFillAndEmpty fills the filesystem with files until it has no space
// (data), then with empty files until it has no inodes, then removes
// everything: statfs and the summaries must be back exactly where they
// were after makefs.
func TestFillAndEmpty(t *testing.T) {
	for _, g := range []testGeom{geomSmall, geomBig} {
		t.Run(g.name, func(t *testing.T) {
			m := newMemFS(t, g, Options{Async: true})
			fsys := m.fs
			start := fsys.Statfs()
			startCs := fsys.Superblock().Cstotal
			root := fsys.Root()
			sizes := []int{1, 700, 3000, 9000, 40000, 200000}
			var dirs []ondisk.Ino
			for i := range 4 {
				dirs = append(dirs, mustIno(t)(fsys.Mkdir(root, "d"+itoa(i), 0o755, 0, 0)))
			}
			n, full := 0, false
			for !full {
				d := dirs[n%len(dirs)]
				ino, err := fsys.Create(d, "f"+itoa(n), 0o644, 0, 0)
				if err != nil {
					if !errors.Is(err, ErrNoSpace) {
						t.Fatal(err)
					}
					full = true
					break
				}
				p := bytes.Repeat([]byte{1}, sizes[n%len(sizes)])
				if _, err := fsys.WriteAt(ino, p, int64(n%3)*5000); err != nil {
					if !errors.Is(err, ErrNoSpace) {
						t.Fatal(err)
					}
					full = true
				}
				n++
			}
			st := fsys.Statfs()
			t.Logf("%d files; free fragments %d, available %d", n, st.Bfree, st.Bavail)
			if st.Bavail > int64(fsys.sb.Frag) && st.Ffree > 0 {
				t.Errorf("ErrNoSpace with %d fragments available", st.Bavail)
			}
			// Extended attributes and directories fail cleanly too.
			if err := fsys.SetXattr(dirs[0], ondisk.ExtattrNamespaceUser, "x", make([]byte, 5000), XattrFlags{}); err != nil && !errors.Is(err, ErrNoSpace) {
				t.Errorf("SetXattr on a full filesystem: %v", err)
			}
			for i := 0; ; i++ {
				if _, err := fsys.Create(dirs[1], "e"+itoa(i), 0o644, 0, 0); err != nil {
					if !errors.Is(err, ErrNoSpace) {
						t.Fatal(err)
					}
					break
				}
			}
			checkFS(t, fsys)
			for _, d := range dirs {
				var names []string
				fsys.ReadDir(d, func(e Dirent) bool {
					if e.Name != "." && e.Name != ".." {
						names = append(names, e.Name)
					}
					return true
				})
				for _, name := range names {
					must(t, fsys.Unlink(d, name))
				}
				fsys.RemoveXattr(d, ondisk.ExtattrNamespaceUser, "x")
			}
			for i := range dirs {
				must(t, fsys.Rmdir(root, "d"+itoa(i)))
			}
			checkFS(t, fsys)
			if got := fsys.Statfs(); got != start {
				t.Errorf("statfs after emptying %+v, after makefs %+v", got, start)
			}
			m.reopen()
			if got := m.fs.Superblock().Cstotal; got.Nbfree != startCs.Nbfree || got.Nffree != startCs.Nffree ||
				got.Nifree != startCs.Nifree || got.Ndir != startCs.Ndir {
				t.Errorf("cstotal after emptying %+v, after makefs %+v", got, startCs)
			}
			checkFS(t, m.fs)
		})
	}
}

// TestSymlinks: targets shorter than fs_maxsymlinklen live in the inode
// (no blocks), longer ones in a block, up to Linux's PATH_MAX-1 (4095)
// bytes; 4096 is ENAMETOOLONG.
func TestSymlinks(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	max := int(fsys.sb.Maxsymlinklen)
	for _, n := range []int{1, max - 1, max, max + 1, 900, MaxPathLen - 1, MaxPathLen, MaxSymlinkLen - 1} {
		target := strings.Repeat("x/", n)[:n]
		ino := mustIno(t)(fsys.Symlink(fsys.Root(), "l"+itoa(n), target, 0, 0))
		st, _ := fsys.Stat(ino)
		if fast := n < max; fast != (st.Blocks == 0) {
			t.Errorf("target of %d bytes: %d blocks", n, st.Blocks)
		}
		if st.Mode != ondisk.IFLNK|0o777 || st.Size != uint64(n) {
			t.Errorf("target of %d bytes: mode 0%o size %d", n, st.Mode, st.Size)
		}
	}
	for _, n := range []int{MaxSymlinkLen, MaxSymlinkLen + 1, 10000} {
		if _, err := fsys.Symlink(fsys.Root(), "toolong", strings.Repeat("y", n), 0, 0); !errors.Is(err, ErrNameTooLong) {
			t.Errorf("target of %d bytes: %v", n, err)
		}
	}
	m.reopen()
	for _, n := range []int{1, max - 1, max, max + 1, 900, MaxPathLen - 1, MaxPathLen, MaxSymlinkLen - 1} {
		ino, err := m.fs.Lookup(m.fs.Root(), "l"+itoa(n))
		must(t, err)
		got, err := m.fs.Readlink(ino)
		if err != nil || got != strings.Repeat("x/", n)[:n] {
			t.Errorf("Readlink of %d bytes: %v", n, err)
		}
	}
	checkFS(t, m.fs)
}

// TestMknod: device numbers land in di_rdev; FIFOs and sockets hold no
// blocks; a directory is not made this way.
func TestMknod(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	for _, tc := range []struct {
		mode uint16
		rdev uint64
	}{{ondisk.IFCHR | 0o600, 0x12345678}, {ondisk.IFBLK | 0o640, 0xff00ff}, {ondisk.IFIFO | 0o644, 0}, {ondisk.IFSOCK | 0o755, 0}} {
		ino := mustIno(t)(fsys.Mknod(fsys.Root(), "n"+itoa(int(tc.mode)), tc.mode, 0, 0, tc.rdev))
		st, _ := fsys.Stat(ino)
		if st.Mode != tc.mode || st.Rdev != tc.rdev || st.Blocks != 0 {
			t.Errorf("mknod 0%o: %+v", tc.mode, st)
		}
	}
	if _, err := fsys.Mknod(fsys.Root(), "dir", ondisk.IFDIR|0o755, 0, 0, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("mknod of a directory: %v", err)
	}
	checkFS(t, fsys)
}

// TestNamespaceErrors checks the errors of the namespace operations.
func TestNamespaceErrors(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	root := fsys.Root()
	d := mustIno(t)(fsys.Mkdir(root, "d", 0o755, 0, 0))
	f := mustIno(t)(fsys.Create(d, "f", 0o644, 0, 0))
	e := mustIno(t)(fsys.Mkdir(root, "e", 0o755, 0, 0))
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"create existing", second(fsys.Create(d, "f", 0o644, 0, 0)), ErrExist},
		{"mkdir existing", second(fsys.Mkdir(root, "d", 0o755, 0, 0)), ErrExist},
		{"create dot", second(fsys.Create(d, ".", 0o644, 0, 0)), ErrExist},
		{"create in a file", second(fsys.Create(f, "x", 0o644, 0, 0)), ErrNotDir},
		{"create slash", second(fsys.Create(d, "a/b", 0o644, 0, 0)), ErrInvalid},
		{"create long", second(fsys.Create(d, strings.Repeat("n", 256), 0o644, 0, 0)), ErrNameTooLong},
		{"unlink a directory", fsys.Unlink(root, "d"), ErrIsDir},
		{"unlink missing", fsys.Unlink(d, "nope"), ErrNotFound},
		{"rmdir a file", fsys.Rmdir(d, "f"), ErrNotDir},
		{"rmdir non-empty", fsys.Rmdir(root, "d"), ErrNotEmpty},
		{"rmdir dot", fsys.Rmdir(d, "."), ErrInvalid},
		{"rmdir dotdot", fsys.Rmdir(d, ".."), ErrInvalid},
		{"link a directory", fsys.Link(e, d, "e2"), ErrPerm},
		{"link over existing", fsys.Link(f, d, "f"), ErrExist},
		{"write a directory", second(fsys.WriteAt(d, []byte("x"), 0)), ErrIsDir},
		{"truncate a directory", fsys.Truncate(d, 0), ErrIsDir},
		{"setattr size of a directory", second(fsys.Setattr(d, SetAttr{Size: ptr(uint64(0))})), ErrIsDir},
		{"xattr namespace", fsys.SetXattr(f, 7, "a", nil, XattrFlags{}), ErrInvalid},
		{"xattr empty name", fsys.SetXattr(f, 1, "", nil, XattrFlags{}), ErrInvalid},
		{"remove missing xattr", fsys.RemoveXattr(f, 1, "nope"), ErrNoAttr},
		{"unknown flag", second(fsys.Setattr(f, SetAttr{Flags: ptr(uint32(0x80000000))})), ErrNotSupported},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	checkFS(t, fsys)

	// Read-only: every change fails with ErrReadOnly.
	must(t, fsys.Close())
	ro, err := Open(m.dev, Options{ReadOnly: true})
	must(t, err)
	defer ro.Close()
	for name, err := range map[string]error{
		"create":   second(ro.Create(root, "x", 0o644, 0, 0)),
		"write":    second(ro.WriteAt(f, []byte("x"), 0)),
		"unlink":   ro.Unlink(d, "f"),
		"rename":   ro.Rename(d, "f", d, "g", RenameFlags{}),
		"setattr":  second(ro.Setattr(f, SetAttr{Mode: ptr(uint16(0o600))})),
		"setxattr": ro.SetXattr(f, 1, "a", nil, XattrFlags{}),
		"sync":     ro.Sync(),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }

// TestLinkCounts: directories count "." and their subdirectories' "..";
// links raise a file's count; UFS_LINK_MAX stops them.
func TestLinkCounts(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{Async: true})
	fsys := m.fs
	root := fsys.Root()
	rst, _ := fsys.Stat(root)
	d := mustIno(t)(fsys.Mkdir(root, "d", 0o755, 0, 0))
	for i := range 3 {
		mustIno(t)(fsys.Mkdir(d, "s"+itoa(i), 0o755, 0, 0))
	}
	nlink := func(ino ondisk.Ino) int16 { st, _ := fsys.Stat(ino); return st.Nlink }
	if nlink(d) != 5 || nlink(root) != rst.Nlink+1 {
		t.Errorf("nlink d %d (want 5), root %d (want %d)", nlink(d), nlink(root), rst.Nlink+1)
	}
	must(t, fsys.Rmdir(d, "s1"))
	if nlink(d) != 4 {
		t.Errorf("after rmdir: nlink %d", nlink(d))
	}
	f := mustIno(t)(fsys.Create(d, "f", 0o644, 0, 0))
	// Raise the count to the limit directly, then one more link fails.
	ip, err := fsys.OpenInode(f)
	must(t, err)
	ip.mu.Lock()
	ip.din.Nlink = ondisk.LinkMax - 1
	must(t, fsys.iupdate(ip, orderDelayed))
	ip.mu.Unlock()
	ip.Release()
	must(t, fsys.Link(f, d, "g"))
	if err := fsys.Link(f, d, "h"); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("link past UFS_LINK_MAX: %v", err)
	}
	if err := fsys.Rename(d, "f", root, "f", RenameFlags{}); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("rename at UFS_LINK_MAX: %v", err)
	}
}

// TestFlags: immutable and append-only files (user or system flags) keep
// their contents, names and attributes; no-unlink files keep their names;
// flags live in di_flags, di_kernflags untouched.
func TestFlags(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	root := fsys.Root()
	d := mustIno(t)(fsys.Mkdir(root, "d", 0o755, 0, 0))
	for _, flag := range []uint32{ondisk.UFImmutable, ondisk.SFImmutable, ondisk.UFAppend, ondisk.SFAppend, ondisk.UFNounlink, ondisk.SFNounlink} {
		f := mustIno(t)(fsys.Create(d, "f", 0o644, 0, 0))
		_, err := fsys.WriteAt(f, []byte("data"), 0)
		must(t, err)
		// Mark the kernel flags to see that they are left alone.
		ip, _ := fsys.OpenInode(f)
		ip.mu.Lock()
		ip.din.Kernflags = 0x5
		ip.mu.Unlock()
		ip.Release()
		st, err := fsys.Setattr(f, SetAttr{Flags: &flag, Mode: ptr(uint16(0o600))})
		must(t, err)
		wantMode := uint16(0o600)
		if flag&(flagImmutable|flagAppend) != 0 {
			wantMode = 0o644
		}
		if st.Flags != flag || st.Mode&0o777 != wantMode {
			t.Errorf("flag 0x%x: setattr set flags 0x%x, mode 0%o (a flag that locks the file stops the rest)", flag, st.Flags, st.Mode)
		}
		immutable := flag&flagImmutable != 0
		appendOnly := flag&flagAppend != 0
		locked := immutable || appendOnly
		expect := func(what string, err error, perm bool) {
			t.Helper()
			if perm != errors.Is(err, ErrPerm) || !perm && err != nil {
				t.Errorf("flag 0x%x: %s: %v (want EPERM: %v)", flag, what, err, perm)
			}
		}
		expect("write in place", second(fsys.WriteAt(f, []byte("x"), 0)), locked)
		expect("append", second(fsys.WriteAt(f, []byte("x"), 4)), immutable)
		expect("truncate", fsys.Truncate(f, 1), locked)
		expect("chmod", second(fsys.Setattr(f, SetAttr{Mode: ptr(uint16(0o600))})), locked)
		expect("setxattr", fsys.SetXattr(f, 1, "a", []byte("v"), XattrFlags{}), locked)
		expect("link", fsys.Link(f, d, "l"), locked)
		expect("rename", fsys.Rename(d, "f", d, "g", RenameFlags{}), true)
		expect("unlink", fsys.Unlink(d, "f"), true)
		ip, _ = fsys.OpenInode(f)
		kf := ip.Dinode().Kernflags
		ip.Release()
		if kf != 0x5 {
			t.Errorf("flag 0x%x: di_kernflags changed to 0x%x", flag, kf)
		}
		// Clearing the flag unlocks the file.
		_, err = fsys.Setattr(f, SetAttr{Flags: ptr(uint32(0))})
		must(t, err)
		fsys.Unlink(d, "l")
		must(t, fsys.Unlink(d, "f"))
	}
	// An immutable directory takes no new entries; an append-only one
	// takes them but gives none up.
	_, err := fsys.Setattr(d, SetAttr{Flags: ptr(uint32(ondisk.UFImmutable))})
	must(t, err)
	if _, err := fsys.Create(d, "x", 0o644, 0, 0); !errors.Is(err, ErrPerm) {
		t.Errorf("create in an immutable directory: %v", err)
	}
	_, err = fsys.Setattr(d, SetAttr{Flags: ptr(uint32(ondisk.SFAppend))})
	must(t, err)
	mustIno(t)(fsys.Create(d, "x", 0o644, 0, 0))
	if err := fsys.Unlink(d, "x"); !errors.Is(err, ErrPerm) {
		t.Errorf("unlink in an append-only directory: %v", err)
	}
	if err := fsys.Rmdir(root, "d"); !errors.Is(err, ErrPerm) {
		t.Errorf("rmdir of an append-only directory: %v", err)
	}
	// SF_SNAPSHOT cannot be toggled.
	if _, err := fsys.Setattr(d, SetAttr{Flags: ptr(uint32(ondisk.SFSnapshot))}); !errors.Is(err, ErrPerm) {
		t.Errorf("setting SF_SNAPSHOT: %v", err)
	}
	checkFS(t, fsys)
}

// TestTimes: nanosecond times; birth time set at creation and moved back
// only by an earlier mtime (the UFS2 paper's utimes rule).
func TestTimes(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 123_456_789)}
	m := newMemFS(t, geomSmall, Options{Now: clock.now})
	fsys := m.fs
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	st, _ := fsys.Stat(f)
	born := clock.now()
	if !st.Birthtime.Equal(born) || !st.Mtime.Equal(born) || !st.Atime.Equal(born) || !st.Ctime.Equal(born) {
		t.Fatalf("new file times %+v, want all %v", st, born)
	}
	clock.set(born.Add(time.Second + 7))
	later := born.Add(time.Hour)
	st, err := fsys.Setattr(f, SetAttr{Mtime: &later})
	must(t, err)
	if !st.Mtime.Equal(later) || !st.Birthtime.Equal(born) || !st.Ctime.Equal(clock.now()) {
		t.Errorf("later mtime: %+v", st)
	}
	earlier := born.Add(-time.Hour - 3)
	st, err = fsys.Setattr(f, SetAttr{Mtime: &earlier})
	must(t, err)
	if !st.Birthtime.Equal(earlier) {
		t.Errorf("mtime before the birth time: birth time %v, want %v", st.Birthtime, earlier)
	}
	m.reopen()
	st, _ = m.fs.Stat(f)
	if !st.Birthtime.Equal(earlier) || !st.Mtime.Equal(earlier) || st.Mtime.Nanosecond() != earlier.Nanosecond() {
		t.Errorf("after remount: %+v", st)
	}
}

// TestXattrSpace: attributes fill the two-block area, then ErrXattrSpace;
// the area's blocks count in di_blocks and go back when removed.
func TestXattrSpace(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	bsize := int(fsys.sb.Bsize)
	val := make([]byte, bsize/2)
	n := 0
	var err error
	for ; n < 10; n++ {
		if err = fsys.SetXattr(f, ondisk.ExtattrNamespaceUser, "a"+itoa(n), val, XattrFlags{Create: true}); err != nil {
			break
		}
		checkFS(t, fsys)
	}
	if !errors.Is(err, ErrXattrSpace) || !errors.Is(err, ErrNoSpace) || n != 3 {
		t.Fatalf("after %d attributes: %v", n, err)
	}
	st, _ := fsys.Stat(f)
	if want := btodb(int64(bsize)) + btodb(fsys.sb.Fragroundup(int64(st.Extsize)-int64(bsize))); st.Blocks != want || st.Extsize <= uint32(bsize) {
		t.Errorf("blocks %d extsize %d", st.Blocks, st.Extsize)
	}
	// Replace in place, then remove: the area shrinks back to nothing.
	must(t, fsys.SetXattr(f, ondisk.ExtattrNamespaceSystem, "s", []byte("v"), XattrFlags{}))
	must(t, fsys.SetXattr(f, ondisk.ExtattrNamespaceUser, "a1", []byte("short"), XattrFlags{Replace: true}))
	xs, err := fsys.Xattrs(f)
	must(t, err)
	var order []string
	for _, x := range xs {
		order = append(order, NamespaceName(x.Namespace)+"."+x.Name)
	}
	if got := strings.Join(order, " "); got != "user.a0 user.a1 user.a2 system.s" {
		t.Errorf("attribute order %q", got)
	}
	for _, x := range xs {
		must(t, fsys.RemoveXattr(f, x.Namespace, x.Name))
		checkFS(t, fsys)
	}
	if st, _ := fsys.Stat(f); st.Blocks != 0 || st.Extsize != 0 {
		t.Errorf("after removing all: blocks %d extsize %d", st.Blocks, st.Extsize)
	}
}

// TestOrphanAtClose: a file unlinked while referenced is freed by Close.
func TestOrphanAtClose(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	before := fsys.Statfs()
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	_, err := fsys.WriteAt(f, make([]byte, 100000), 0)
	must(t, err)
	must(t, fsys.Ref(f))
	must(t, fsys.Unlink(fsys.Root(), "f"))
	if st, err := fsys.Stat(f); err != nil || st.Nlink != 0 || st.Size != 100000 {
		t.Fatalf("unlinked referenced file: %+v, %v", st, err)
	}
	m.reopen()
	checkFS(t, m.fs)
	if after := m.fs.Statfs(); after != before {
		t.Errorf("statfs %+v, before %+v", after, before)
	}
}

// TestWriteOrder records the device's writes: a new file's inode block
// reaches the device before the directory block naming it, and a removed
// entry's block before the inode with the lowered link count; under
// Async neither is written before a sync.
func TestWriteOrder(t *testing.T) {
	for _, async := range []bool{false, true} {
		img := emptyImage(t, geomSmall)
		rec := blockdev.NewRecorder(blockdev.NewMemBytes(img))
		fsys, err := Open(rec, Options{Async: async})
		must(t, err)
		d := mustIno(t)(fsys.Mkdir(fsys.Root(), "d", 0o755, 0, 0))
		dirBlock := func() int64 {
			p, err := fsys.Bmap(d, 0)
			must(t, err)
			return fsys.sb.FragOffset(p)
		}
		rec.Reset()
		f := mustIno(t)(fsys.Create(d, "f", 0o644, 0, 0))
		inoOff, _, _ := fsys.inodeBlock(f)
		ops := rec.Ops()
		at := func(off int64) int {
			for i, op := range ops {
				if op.Kind == blockdev.OpWrite && op.Off == off {
					return i
				}
			}
			return -1
		}
		iw, dw := at(inoOff), at(dirBlock())
		if async {
			if len(ops) != 0 {
				t.Errorf("async create wrote %d times", len(ops))
			}
		} else if iw < 0 || dw < 0 || iw > dw {
			t.Errorf("create: inode block written at %d, directory block at %d (of %d writes)", iw, dw, len(ops))
		}
		rec.Reset()
		must(t, fsys.Unlink(d, "f"))
		ops = rec.Ops()
		if !async && (at(dirBlock()) != 0) {
			t.Errorf("unlink: writes %v, want the directory block first", ops)
		}
		must(t, fsys.Close())
	}
}

// TestFallocate: holes in the range get zero-filled blocks, data stays,
// the size grows unless keepSize, and nothing is allocated past the end.
func TestFallocate(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	bsize := int64(fsys.sb.Bsize)
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	_, err := fsys.WriteAt(f, []byte("head"), 0)
	must(t, err)
	_, err = fsys.WriteAt(f, []byte("tail"), 40*bsize)
	must(t, err)
	hole := func(off int64) bool { p, err := fsys.Bmap(f, fsys.sb.Lblkno(off)); must(t, err); return p == 0 }
	if !hole(20 * bsize) {
		t.Fatal("no hole to fill")
	}
	must(t, fsys.Fallocate(f, 10*bsize, 20*bsize, true))
	if hole(20*bsize) || hole(10*bsize) || !hole(35*bsize) {
		t.Error("fallocate did not fill exactly its range")
	}
	st, _ := fsys.Stat(f)
	if st.Size != uint64(40*bsize+4) {
		t.Errorf("keepSize changed the size to %d", st.Size)
	}
	must(t, fsys.Fallocate(f, 40*bsize, 10*bsize, true)) // past the end: cut
	if st2, _ := fsys.Stat(f); st2.Blocks != st.Blocks {
		t.Errorf("fallocate past the end with keepSize allocated %d sectors", st2.Blocks-st.Blocks)
	}
	must(t, fsys.Fallocate(f, 0, 50*bsize+7, false))
	st, _ = fsys.Stat(f)
	if st.Size != uint64(50*bsize+7) {
		t.Errorf("size %d after growing fallocate", st.Size)
	}
	got := make([]byte, 50*bsize+7)
	n, err := fsys.ReadAt(f, got, 0)
	if n != len(got) || err != nil && err.Error() != "EOF" {
		t.Fatalf("read %d: %v", n, err)
	}
	want := make([]byte, len(got))
	copy(want, "head")
	copy(want[40*bsize:], "tail")
	if !bytes.Equal(got, want) {
		t.Error("contents changed by fallocate")
	}
	checkFS(t, fsys)
}

// TestFsync: a file's dirty blocks and inode reach the device, then the
// device is synced.
func TestFsync(t *testing.T) {
	rec := blockdev.NewRecorder(blockdev.NewMemBytes(emptyImage(t, geomSmall)))
	fsys, err := Open(rec, Options{Async: true})
	must(t, err)
	defer fsys.Close()
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	_, err = fsys.WriteAt(f, []byte("some data"), 0)
	must(t, err)
	rec.Reset()
	must(t, fsys.Fsync(f, false))
	ops := rec.Ops()
	p, _ := fsys.Bmap(f, 0)
	inoOff, _, _ := fsys.inodeBlock(f)
	var data, inode bool
	for _, op := range ops[:len(ops)-1] {
		data = data || op.Off == fsys.sb.FragOffset(p)
		inode = inode || op.Off == inoOff
	}
	if !data || !inode || ops[len(ops)-1].Kind != blockdev.OpSync {
		t.Errorf("fsync wrote %v", ops)
	}
}

// TestTooBig: writes and truncations past fs_maxfilesize fail with
// ErrTooBig; a write that crosses it writes what fits.
func TestTooBig(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	f := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	max := int64(fsys.sb.Maxfilesize)
	if err := fsys.Truncate(f, uint64(max)+1); !errors.Is(err, ErrTooBig) {
		t.Errorf("truncate past the maximum: %v", err)
	}
	if n, err := fsys.WriteAt(f, []byte("abcd"), max-2); n != 2 || !errors.Is(err, ErrTooBig) {
		t.Errorf("write across the maximum: %d, %v", n, err)
	}
	if n, err := fsys.WriteAt(f, []byte("x"), max); n != 0 || !errors.Is(err, ErrTooBig) {
		t.Errorf("write at the maximum: %d, %v", n, err)
	}
	checkFS(t, fsys)
}

// TestWriteOnCorruptNeverPanics damages a populated image at random
// places (metadata included) and runs changes on it: they may fail, with
// any error, but nothing panics.
func TestWriteOnCorruptNeverPanics(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	root := fsys.Root()
	for i := range 40 {
		d := mustIno(t)(fsys.Mkdir(root, "d"+itoa(i), 0o755, 0, 0))
		for j := range 10 {
			f := mustIno(t)(fsys.Create(d, "f"+itoa(j), 0o644, 0, 0))
			_, err := fsys.WriteAt(f, bytes.Repeat([]byte{byte(j)}, j*1500), int64(j)*9000)
			must(t, err)
		}
	}
	must(t, fsys.Close())
	base := m.dev.Bytes()
	sb, _, err := ondisk.FindSuperblock(bytes.NewReader(base))
	must(t, err)
	used := sb.FragOffset(ondisk.Frag(sb.Size)) / 4 // where makefs and the engine put things
	rng := newTestRand(5)
	for iter := range 60 {
		img := bytes.Clone(base)
		for range 1 + rng.IntN(40) {
			img[rng.Int64N(used)] ^= byte(1 + rng.IntN(255))
		}
		fsys, err := Open(blockdev.NewMemBytes(img), Options{})
		if err != nil {
			continue
		}
		for k := range 30 {
			d := ondisk.Ino(2 + rng.IntN(60))
			name := "f" + itoa(rng.IntN(12))
			switch k % 7 {
			case 0:
				fsys.Create(d, "new"+itoa(k), 0o644, 0, 0)
			case 1:
				if ino, err := fsys.Lookup(d, name); err == nil {
					fsys.WriteAt(ino, make([]byte, 20000), rng.Int64N(1<<20))
				}
			case 2:
				if ino, err := fsys.Lookup(d, name); err == nil {
					fsys.Truncate(ino, uint64(rng.IntN(30000)))
				}
			case 3:
				fsys.Unlink(d, name)
			case 4:
				fsys.Rename(d, name, ondisk.Ino(2+rng.IntN(60)), "moved"+itoa(k), RenameFlags{})
			case 5:
				fsys.SetXattr(d, 1, "a", make([]byte, 3000), XattrFlags{})
			case 6:
				fsys.Rmdir(root, "d"+itoa(rng.IntN(40)))
			}
		}
		if err := fsys.Close(); err != nil {
			t.Logf("iteration %d: Close: %v", iter, err)
		}
	}
}
