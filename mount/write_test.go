package mount

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ufs"
)

// mountRW formats an image of size bytes and mounts it read-write. The
// cleanup unmounts it and checks the image (clean, fsck finds nothing).
func mountRW(t *testing.T, size int64) (img, mnt string, srv *Server) {
	t.Helper()
	img = newImage(t, size)
	t.Cleanup(func() { checkImage(t, img) }) // after the unmount mountImage registers
	mnt, srv = mountImage(t, img, Options{})
	if srv.ReadOnly() {
		t.Fatal("read-write mount came up read-only")
	}
	return img, mnt, srv
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestCopyInOut copies a source tree in with cp -a and back out, and
// compares everything cp -a keeps, across a remount; sleuthkit then reads
// the unmounted image and finds the same files.
func TestCopyInOut(t *testing.T) {
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.Small())
	img := newImage(t, 64<<20)
	mnt, srv := mountImage(t, img, Options{})
	run(t, "", "cp", "-a", src+"/.", mnt)
	if out, err := exec.Command("diff", "-r", "--no-dereference", src, mnt).CombinedOutput(); err != nil {
		t.Fatalf("diff -r after cp -a in: %v\n%s", err, out)
	}
	all := testutil.CompareOpts{Owners: true, Times: true}
	testutil.AssertSameTree(t, src, mnt, all)
	unmountCheck(t, srv)
	checkImage(t, img)

	mnt, srv = mountImage(t, img, Options{ReadOnly: true})
	testutil.AssertSameTree(t, src, mnt, all)
	out := filepath.Join(t.TempDir(), "out")
	run(t, "", "cp", "-a", mnt, out)
	testutil.AssertSameTree(t, src, out, all)
	unmountCheck(t, srv)

	testutil.RequireTool(t, "tsk_recover", "sleuthkit")
	rec := t.TempDir()
	testutil.TskRecover(t, img, rec)
	testutil.AssertSameTree(t, src, rec, testutil.ContentOnly())
}

// TestTarAndGit drives the mount with tar and git.
func TestTarAndGit(t *testing.T) {
	testutil.RequireTool(t, "git", "git")
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.TreeSpec{Seed: 5, Depth: 3, Dirs: 6, Files: 60, MaxFileSize: 30 << 10, ShortSymlinks: 3, HardLinks: 3})
	_, mnt, _ := mountRW(t, 64<<20)

	tarball := filepath.Join(t.TempDir(), "src.tar")
	run(t, src, "tar", "-cf", tarball, ".")
	x := filepath.Join(mnt, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, x, "tar", "-xpf", tarball)
	testutil.AssertSameTree(t, src, x, testutil.CompareOpts{Owners: true, Times: true, TimeGranularity: time.Second})
	back := filepath.Join(t.TempDir(), "back.tar")
	run(t, x, "tar", "-cf", back, ".")
	y := t.TempDir()
	run(t, y, "tar", "-xpf", back)
	testutil.AssertSameTree(t, src, y, testutil.CompareOpts{Owners: true, Times: true, TimeGranularity: time.Second})

	repo := filepath.Join(mnt, "repo")
	run(t, "", "cp", "-a", src, repo)
	git := func(args ...string) string {
		return run(t, repo, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"}, args...)...)
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	if err := os.WriteFile(filepath.Join(repo, "new.txt"), []byte("change\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "new.txt")
	git("commit", "-q", "-m", "second")
	git("fsck", "--strict")
	if st := git("status", "--porcelain"); st != "" {
		t.Errorf("git status after commit: %q", st)
	}
	if log := git("log", "--oneline"); strings.Count(log, "\n") != 2 {
		t.Errorf("git log: %q", log)
	}
	git("gc", "-q")
	git("fsck", "--strict")
}

// TestLargeFile writes a file into double indirect blocks (past 128 MiB
// with 32 KiB blocks) in 1 MiB pieces and reads it back by checksum,
// through the page cache and again after a remount. (The 1 GiB file of
// the acceptance test is written through the ufs2 command, whose server
// is not slowed by the race detector: cmd/ufs2's TestMountLargeFile.)
func TestLargeFile(t *testing.T) {
	const size = 160 << 20
	img := newImage(t, size+64<<20)
	mnt, srv := mountImage(t, img, Options{})
	p := filepath.Join(mnt, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for off := 0; off < size; off += len(buf) {
		copy(buf, fmt.Sprintf("block at %d", off))
		want.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum := func() []byte {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Fatal(err)
		}
		return h.Sum(nil)
	}
	if got := sum(); !bytes.Equal(got, want.Sum(nil)) {
		t.Fatal("checksum of the large file differs")
	}
	unmountCheck(t, srv)
	checkImage(t, img)
	mnt, _ = mountImage(t, img, Options{ReadOnly: true})
	p = filepath.Join(mnt, "big")
	if got := sum(); !bytes.Equal(got, want.Sum(nil)) {
		t.Fatal("checksum of the large file differs after a remount")
	}
}

// TestSparseWrite writes a file with holes and checks SEEK_DATA,
// SEEK_HOLE, the block count and the zeros.
func TestSparseWrite(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	p := filepath.Join(mnt, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const blk = 32 << 10 // newfs's block size
	data := bytes.Repeat([]byte("x"), blk)
	for _, off := range []int64{0, 10 * blk, 100 * blk} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(300 * blk)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{0, unix.SEEK_HOLE, blk},
		{blk, unix.SEEK_DATA, 10 * blk},
		{10*blk + 5, unix.SEEK_HOLE, 11 * blk},
		{11 * blk, unix.SEEK_DATA, 100 * blk},
		{100 * blk, unix.SEEK_HOLE, 101 * blk},
		{101 * blk, unix.SEEK_HOLE, 101 * blk},
		// Growing a file allocates its last block, as FreeBSD does.
		{101 * blk, unix.SEEK_DATA, 299 * blk},
		{299*blk + 1, unix.SEEK_DATA, 299*blk + 1},
		{299 * blk, unix.SEEK_HOLE, size},
	} {
		if got, err := unix.Seek(fd, c.off, c.whence); err != nil || got != c.want {
			t.Errorf("lseek(%d, %d) = %d, %v; want %d", c.off, c.whence, got, err, c.want)
		}
	}
	if _, err := unix.Seek(fd, size, unix.SEEK_DATA); !errors.Is(err, syscall.ENXIO) {
		t.Errorf("SEEK_DATA at the end: %v, want ENXIO", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	// Four data blocks and one indirect block.
	if st.Size != size || st.Blocks*512 != 5*blk {
		t.Errorf("size %d, %d bytes allocated; want %d and %d", st.Size, st.Blocks*512, size, 5*blk)
	}
	got := make([]byte, 2*blk)
	if _, err := f.ReadAt(got, 9*blk); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:blk], make([]byte, blk)) || !bytes.Equal(got[blk:], data) {
		t.Error("a hole does not read as zeros, or data around it is wrong")
	}
}

// TestOpenUnlinked: an unlinked open file stays readable and writable
// until closed; then its space is freed. Renames of open files keep them
// usable too.
func TestOpenUnlinked(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	var before unix.Statfs_t
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mnt, "doomed")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("unlinked "), 1<<17) // about 1 MiB
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("more")); err != nil {
		t.Fatalf("write after unlink: %v", err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after unlink: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 || st.Size != int64(len(data))+4 {
		t.Errorf("fstat after unlink: nlink %d size %d, %v", st.Nlink, st.Size, err)
	}
	var during unix.Statfs_t
	unix.Statfs(mnt, &during)
	if during.Bfree >= before.Bfree {
		t.Errorf("free fragments %d while the unlinked file is open, %d before", during.Bfree, before.Bfree)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var after unix.Statfs_t
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		unix.Statfs(mnt, &after)
		if after.Bfree == before.Bfree || time.Now().After(deadline) {
			break // the kernel sends RELEASE after close returns
		}
	}
	if after.Bfree != before.Bfree || after.Ffree != before.Ffree {
		t.Errorf("after the last close: %d free fragments, %d free inodes; before: %d, %d",
			after.Bfree, after.Ffree, before.Bfree, before.Ffree)
	}

	// Rename of an open file, and over an open file.
	a, b := filepath.Join(mnt, "a"), filepath.Join(mnt, "b")
	fa, err := os.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	if err := os.WriteFile(b, []byte("old b"), 0o644); err != nil {
		t.Fatal(err)
	}
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := fa.Write([]byte("new b")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(b); err != nil || string(got) != "new b" {
		t.Errorf("renamed open file reads %q, %v", got, err)
	}
	if got, err := io.ReadAll(fb); err != nil || string(got) != "old b" {
		t.Errorf("replaced open file reads %q, %v", got, err)
	}
}

// TestNamespace: hard links, renameat2's flags, mknod and mkfifo,
// symlinks, chmod, chown and utimensat with nanoseconds, xattrs.
func TestNamespace(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	at := func(s string) string { return filepath.Join(mnt, s) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(at("f"), []byte("one"), 0o644))
	if _, err := os.OpenFile(at("f"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("O_CREAT|O_EXCL of an existing file: %v, want EEXIST", err)
	}
	must(os.Link(at("f"), at("g")))
	must(os.Mkdir(at("d"), 0o755))
	must(os.Link(at("f"), at("d/h")))
	var sf, sh unix.Stat_t
	must(unix.Lstat(at("f"), &sf))
	must(unix.Lstat(at("d/h"), &sh))
	if sf.Ino != sh.Ino || sf.Nlink != 3 {
		t.Errorf("hard links: inodes %d %d, nlink %d", sf.Ino, sh.Ino, sf.Nlink)
	}
	if err := os.Link(at("d"), at("d2")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("link to a directory: %v, want EPERM", err)
	}

	must(os.WriteFile(at("other"), []byte("two"), 0o644))
	if err := unix.Renameat2(unix.AT_FDCWD, at("f"), unix.AT_FDCWD, at("other"), unix.RENAME_NOREPLACE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("RENAME_NOREPLACE over an existing name: %v, want EEXIST", err)
	}
	must(unix.Renameat2(unix.AT_FDCWD, at("f"), unix.AT_FDCWD, at("other"), unix.RENAME_EXCHANGE))
	if a, _ := os.ReadFile(at("f")); string(a) != "two" {
		t.Errorf("after RENAME_EXCHANGE f holds %q", a)
	}
	if b, _ := os.ReadFile(at("other")); string(b) != "one" {
		t.Errorf("after RENAME_EXCHANGE other holds %q", b)
	}
	must(unix.Renameat2(unix.AT_FDCWD, at("other"), unix.AT_FDCWD, at("d/moved"), unix.RENAME_NOREPLACE))
	must(os.Rename(at("d"), at("e")))
	if b, _ := os.ReadFile(at("e/moved")); string(b) != "one" {
		t.Errorf("after moving the directory: %q", b)
	}
	if err := os.Rename(at("e"), at("e/moved/x")); err == nil {
		t.Error("moved a directory under a file")
	}
	must(os.Mkdir(at("e/sub"), 0o755))
	if err := os.Rename(at("e"), at("e/sub/x")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("move a directory under itself: %v, want EINVAL", err)
	}
	if err := os.Remove(at("e")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a full directory: %v, want ENOTEMPTY", err)
	}

	must(unix.Mkfifo(at("fifo"), 0o640))
	must(unix.Mknod(at("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(at("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(259, 70000))))
	var st unix.Stat_t
	must(unix.Lstat(at("fifo"), &st))
	if st.Mode != unix.S_IFIFO|0o640 {
		t.Errorf("fifo mode 0%o", st.Mode)
	}
	must(unix.Lstat(at("blk"), &st))
	if st.Mode != unix.S_IFBLK|0o600 || unix.Major(st.Rdev) != 259 || unix.Minor(st.Rdev) != 70000 {
		t.Errorf("block device: mode 0%o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	long := strings.Repeat("t", 300)
	for _, target := range []string{"short", long} {
		name := at("l" + fmt.Sprint(len(target)))
		must(os.Symlink(target, name))
		if got, err := os.Readlink(name); err != nil || got != target {
			t.Errorf("readlink of a %d-byte target: %q, %v", len(target), got, err)
		}
	}

	p := at("e/moved")
	must(os.Chown(p, 1234, 5678)) // before chmod: Linux's chown clears setuid
	must(unix.Chmod(p, 0o4751))
	ts := []unix.Timespec{{Sec: 1000000000, Nsec: 123456789}, {Sec: 1100000000, Nsec: 987654321}}
	must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0))
	must(unix.Lstat(p, &st))
	if st.Mode&0o7777 != 0o4751 || st.Uid != 1234 || st.Gid != 5678 ||
		st.Atim != ts[0] || st.Mtim != ts[1] {
		t.Errorf("after chmod, chown, utimensat: mode 0%o uid %d gid %d atime %v mtime %v", st.Mode, st.Uid, st.Gid, st.Atim, st.Mtim)
	}
	var sx unix.Statx_t
	must(unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_BTIME, &sx))
	if sx.Mask&unix.STATX_BTIME == 0 || sx.Btime.Sec > ts[1].Sec {
		t.Errorf("birth time %d (mask 0x%x): the mtime set before it should pull it back", sx.Btime.Sec, sx.Mask)
	}
	must(os.Truncate(p, 1))
	if b, _ := os.ReadFile(p); string(b) != "o" {
		t.Errorf("after truncate: %q", b)
	}

	must(unix.Setxattr(p, "user.k", []byte("v1"), 0))
	if err := unix.Setxattr(p, "user.k", []byte("v2"), unix.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("XATTR_CREATE on an existing attribute: %v", err)
	}
	if err := unix.Setxattr(p, "user.none", []byte("v"), unix.XATTR_REPLACE); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("XATTR_REPLACE on a missing attribute: %v", err)
	}
	must(unix.Setxattr(p, "trusted.sys", []byte("s"), 0))
	if err := unix.Setxattr(p, "security.selinux", []byte("x"), 0); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("security.* attribute: %v, want EOPNOTSUPP", err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(p, "user.k", buf); err != nil || string(buf[:n]) != "v1" {
		t.Errorf("getxattr: %q, %v", buf[:n], err)
	}
	must(unix.Removexattr(p, "user.k"))
	if _, err := unix.Getxattr(p, "user.k", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("after removexattr: %v", err)
	}
	if err := unix.Setxattr(p, "user.big", make([]byte, 200<<10), 0); !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.E2BIG) {
		t.Errorf("a 200 KiB attribute: %v, want ENOSPC or E2BIG", err)
	}

	must(os.Remove(at("g")))
	must(os.Remove(at("f")))
	must(os.RemoveAll(at("e")))
}

// TestACL sets POSIX ACLs through the kernel and checks that the mode
// follows, that they are stored as FreeBSD stores them, and that the
// kernel enforces them for another user.
func TestACL(t *testing.T) {
	img := newImage(t, 64<<20)
	mnt, srv := mountImage(t, img, Options{AllowOther: true})
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(uid uint32) error {
		cmd := exec.Command("cat", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		_, err := cmd.Output()
		return err
	}
	if err := read(4321); err == nil {
		t.Fatal("uid 4321 reads a 0600 root file before any ACL")
	}
	// user::rw- user:4321:r-- group::--- mask::r-- other::---
	acl := []byte{2, 0, 0, 0,
		aclUserObj, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		aclUser, 0, 4, 0, 0xe1, 0x10, 0, 0,
		aclGroupObj, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
		aclMask, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		aclOther, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	if err := unix.Setxattr(p, linuxACLAccess, acl, 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil || st.Mode&0o777 != 0o640 {
		t.Errorf("mode after setting the ACL: 0%o, %v; want 0640 (mask r--)", st.Mode&0o777, err)
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, linuxACLAccess, buf)
	if err != nil || !bytes.Equal(buf[:n], acl) {
		t.Errorf("ACL read back %x, %v; want %x", buf[:n], err, acl)
	}
	if err := read(4321); err != nil {
		t.Errorf("uid 4321 cannot read through the ACL: %v", err)
	}
	if err := read(4322); err == nil {
		t.Error("uid 4322 reads the file; the ACL grants only 4321")
	}
	unmountCheck(t, srv)
	checkImage(t, img)

	// On disk: FreeBSD's struct oldacl in the system namespace.
	fsys := openEngine(t, img)
	ino, err := fsys.Namei("/f")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fsys.GetXattr(ino, 2, bsdACLAccessName)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := decodeOldACL(raw)
	want := []aclEntry{{aclUserObj, aclUndefinedID, 6}, {aclUser, 4321, 4}, {aclGroupObj, aclUndefinedID, 0},
		{aclMask, aclUndefinedID, 4}, {aclOther, aclUndefinedID, 0}}
	if err != nil || fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Errorf("ACL on disk %v, %v; want %v", entries, err, want)
	}
}

// envMmapFile names the file mmapChild maps; set only for the child
// TestMmap starts (TestMain runs mmapChild then).
const envMmapFile = "UFS2_TEST_MMAP_FILE"

// TestMmap writes through a shared mapping and reads with read(2), and
// the other way round. The mapping is touched by a child process: a page
// fault on a FUSE file served by this process cannot be served while the
// Go runtime stops the world for the garbage collector, and the faulting
// thread cannot stop, so an in-process fault can deadlock the test.
func TestMmap(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	p := filepath.Join(mnt, "m")
	if err := os.WriteFile(p, make([]byte, mmapSize), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envMmapFile+"="+p)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mmap child: %v\n%s", err, out)
	}
	data, err := os.ReadFile(p)
	if err != nil || len(data) != mmapSize {
		t.Fatalf("file after the child unmapped it: %d bytes, %v", len(data), err)
	}
	if got := string(data[4000:4020]); got != "written through mmap" {
		t.Errorf("file after munmap: %q", got)
	}
	if got := string(data[mmapSize-50 : mmapSize-33]); got != "written by pwrite" {
		t.Errorf("file after munmap: %q at the pwrite", got)
	}
}

// mmapSize is the size of TestMmap's file: three pages and part of one.
const mmapSize = 3*4096 + 100

// mmapChild is TestMmap's child: it maps the file envMmapFile names,
// writes through the mapping, reads with read(2), writes with pwrite and
// reads through the mapping.
func mmapChild() error {
	f, err := os.OpenFile(os.Getenv(envMmapFile), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	copy(m[4000:], "written through mmap")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return err
	}
	got := make([]byte, 20)
	if _, err := f.ReadAt(got, 4000); err != nil || string(got) != "written through mmap" {
		return fmt.Errorf("read after an mmap write: %q, %v", got, err)
	}
	if _, err := f.WriteAt([]byte("written by pwrite"), mmapSize-50); err != nil {
		return err
	}
	if s := string(m[mmapSize-50 : mmapSize-33]); s != "written by pwrite" {
		return fmt.Errorf("mapping after pwrite: %q", s)
	}
	return unix.Munmap(m)
}

// TestParallelWriters runs writers and readers in several directories at
// once (the race detector watches the server) and checks every file.
func TestParallelWriters(t *testing.T) {
	_, mnt, _ := mountRW(t, 128<<20)
	const workers, files = 6, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(mnt, fmt.Sprintf("w%d", w%3), fmt.Sprintf("sub%d", w))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(w), 77))
			for i := range files {
				data := make([]byte, rng.IntN(100<<10))
				for j := range data {
					data[j] = byte(w + i + j)
				}
				p := filepath.Join(dir, fmt.Sprintf("f%d", i))
				if err := os.WriteFile(p, data, 0o644); err != nil {
					errs <- err
					return
				}
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s: read back %d bytes, %v; want %d", p, len(got), err, len(data))
					return
				}
				if i%3 == 0 {
					if err := os.Rename(p, p+".renamed"); err != nil {
						errs <- err
						return
					}
				}
				if i%5 == 0 {
					os.Remove(p + ".renamed")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFsyncDurable: what fsync returned for is on the device, while the
// filesystem is still mounted (a copy of the image, opened by the engine,
// has it).
func TestFsyncDurable(t *testing.T) {
	img, mnt, _ := mountRW(t, 64<<20)
	p := filepath.Join(mnt, "durable")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("fsync "), 50000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of the directory: %v", err)
	}
	d.Close()
	assertOnDevice(t, img, "/durable", data)
}

// TestUnmountBusy unmounts while writers are busy: the mount is detached
// at once, the writers finish through their open directory descriptors,
// the server stops when the last descriptor closes, and every file whose
// close returned — before or after the unmount began — is on the image,
// which is clean.
func TestUnmountBusy(t *testing.T) {
	img := newImage(t, 128<<20)
	mnt, srv := mountImage(t, img, Options{})
	const workers = 4
	type done struct {
		name string
		data []byte
	}
	var (
		mu        sync.Mutex
		completed []done
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range workers {
		dirfd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer unix.Close(dirfd)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%05d", w, i)
				data := bytes.Repeat([]byte(name), 1+i%2000)
				fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
				if err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				if _, err := unix.Write(fd, data); err != nil {
					t.Errorf("write %s: %v", name, err)
				}
				if i%4 == 0 {
					if err := unix.Fsync(fd); err != nil {
						t.Errorf("fsync %s: %v", name, err)
					}
				}
				if err := unix.Close(fd); err != nil {
					t.Errorf("close %s: %v", name, err)
				}
				mu.Lock()
				completed = append(completed, done{name, data})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	before := len(completed)
	mu.Unlock()
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Error("still mounted after Unmount")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := srv.Wait(); err != nil {
		t.Fatalf("closing the filesystem: %v", err)
	}
	if before == 0 {
		t.Fatal("no file was written before the unmount")
	}
	if len(completed) == before {
		t.Error("no file was written after the unmount began: open descriptors stopped working")
	}
	checkImage(t, img)
	fsys := openEngine(t, img)
	for _, d := range completed {
		ino, err := fsys.Namei("/" + d.name)
		if err != nil {
			t.Errorf("%s: %v", d.name, err)
			continue
		}
		got := make([]byte, len(d.data)+1)
		n, _ := fsys.ReadAt(ino, got, 0)
		if !bytes.Equal(got[:n], d.data) {
			t.Errorf("%s: %d bytes on the image, want %d", d.name, n, len(d.data))
		}
	}
	t.Logf("%d files written before the unmount began, %d in all", before, len(completed))
}

// linuxACL builds an ACL in Linux's xattr form from (tag, id, perm)
// triples; ids of the owner, group, mask and other entries are ignored.
func linuxACL(entries ...[3]uint32) []byte {
	b := []byte{2, 0, 0, 0}
	for _, e := range entries {
		id := e[1]
		if e[0] != aclUser && e[0] != aclGroup {
			id = aclUndefinedID
		}
		b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[2]), byte(e[2]>>8), byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return b
}

// TestDefaultACL: new files and directories inherit a directory's default
// ACL (masked by the mode they are created with, the umask ignored), new
// directories keep it as their own default; elsewhere the umask applies.
func TestDefaultACL(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	d := filepath.Join(mnt, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	dflt := linuxACL([3]uint32{aclUserObj, 0, 7}, [3]uint32{aclUser, 4321, 7}, [3]uint32{aclGroupObj, 0, 5},
		[3]uint32{aclMask, 0, 7}, [3]uint32{aclOther, 0, 5})
	if err := unix.Setxattr(d, linuxACLDefault, dflt, 0); err != nil {
		t.Fatal(err)
	}
	getACL := func(p, name string) []byte {
		buf := make([]byte, 512)
		n, err := unix.Getxattr(p, name, buf)
		if err != nil {
			t.Errorf("getxattr(%s, %s): %v", p, name, err)
			return nil
		}
		return buf[:n]
	}
	mode := func(p string) uint32 {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Mode & 0o7777
	}
	if got := getACL(d, linuxACLDefault); !bytes.Equal(got, dflt) {
		t.Errorf("default ACL read back %x, want %x", got, dflt)
	}

	f := filepath.Join(d, "f")
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if m := mode(f); m != 0o664 {
		t.Errorf("file under a default ACL: mode 0%o, want 0664 (umask ignored, other r-- from the ACL)", m)
	}
	wantF := linuxACL([3]uint32{aclUserObj, 0, 6}, [3]uint32{aclUser, 4321, 7}, [3]uint32{aclGroupObj, 0, 5},
		[3]uint32{aclMask, 0, 6}, [3]uint32{aclOther, 0, 4})
	if got := getACL(f, linuxACLAccess); !bytes.Equal(got, wantF) {
		t.Errorf("inherited access ACL %x, want %x", got, wantF)
	}

	sub := filepath.Join(d, "sub")
	if err := os.Mkdir(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	if m := mode(sub); m != 0o775 {
		t.Errorf("directory under a default ACL: mode 0%o, want 0775", m)
	}
	if got := getACL(sub, linuxACLDefault); !bytes.Equal(got, dflt) {
		t.Errorf("new directory's default ACL %x, want %x", got, dflt)
	}

	plain := filepath.Join(mnt, "plain")
	if err := os.WriteFile(plain, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if m := mode(plain); m != 0o600 {
		t.Errorf("file without a default ACL: mode 0%o, want 0600 (umask 077)", m)
	}
	if _, err := unix.Getxattr(plain, linuxACLAccess, make([]byte, 64)); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("file without a default ACL has an access ACL: %v", err)
	}
	// Removing the default ACL stops the inheritance.
	if err := unix.Removexattr(d, linuxACLDefault); err != nil {
		t.Fatal(err)
	}
	g := filepath.Join(d, "g")
	if err := os.WriteFile(g, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if m := mode(g); m != 0o600 {
		t.Errorf("after removing the default ACL: mode 0%o, want 0600", m)
	}
}

// TestNoSpace fills a small filesystem: the write fails with ENOSPC (not
// EIO), and removing the file gives every fragment back.
func TestNoSpace(t *testing.T) {
	_, mnt, _ := mountRW(t, 16<<20)
	var before unix.Statfs_t
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mnt, "fill")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 64 && werr == nil; i++ {
		_, werr = f.Write(buf)
	}
	if werr == nil {
		werr = f.Sync()
	}
	f.Close()
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the filesystem: %v, want ENOSPC", werr)
	}
	if err := unix.Mkdir(filepath.Join(mnt, "x"), 0o755); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("mkdir on a full filesystem: %v", err)
	}
	os.Remove(filepath.Join(mnt, "x"))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	var after unix.Statfs_t
	if err := unix.Statfs(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if after.Bfree != before.Bfree || after.Ffree != before.Ffree {
		t.Errorf("after removing the file: %d free fragments, %d free inodes; before: %d, %d", after.Bfree, after.Ffree, before.Bfree, before.Ffree)
	}
}

// TestSyncer: without fsync, what was written reaches the device within
// syncdelay, summaries and superblock included (a copy of the mounted
// image opens and holds the file).
func TestSyncer(t *testing.T) {
	img := newImage(t, 64<<20)
	t.Cleanup(func() { checkImage(t, img) })
	mnt, _ := mountImage(t, img, Options{SyncDelay: 100 * time.Millisecond})
	data := bytes.Repeat([]byte("synced "), 10000)
	if err := os.WriteFile(filepath.Join(mnt, "s"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !bytes.Equal(got, data) {
		time.Sleep(150 * time.Millisecond)
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := ufs.Open(blockdev.NewMemBytes(raw), ufs.Options{ReadOnly: true})
		if err != nil {
			continue // caught mid-sync
		}
		if ino, err := fsys.Namei("/s"); err == nil {
			got = make([]byte, len(data))
			n, _ := fsys.ReadAt(ino, got, 0)
			got = got[:n]
		}
		fsys.Close()
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("after 10 s the device holds %d of the %d bytes written", len(got), len(data))
	}
}

// TestStaleHandle: the file handle of a removed file goes stale, also
// when its inode number is reused (a new generation), across a remount.
func TestStaleHandle(t *testing.T) {
	img, mnt, srv := mountRW(t, 64<<20)
	p := filepath.Join(mnt, "a")
	if err := os.WriteFile(p, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Stat_t
	if err := unix.Stat(p, &old); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	reused := false
	for i := range 20 {
		q := filepath.Join(mnt, fmt.Sprintf("b%d", i))
		if err := os.WriteFile(q, []byte("b"), 0o644); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Stat(q, &st)
		if st.Ino == old.Ino {
			reused = true
			break
		}
	}
	unmountCheck(t, srv)
	mnt, _ = mountImage(t, img, Options{})
	root, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fd, err := unix.OpenByHandleAt(int(root.Fd()), h, unix.O_RDONLY)
	if err == nil {
		unix.Close(fd)
	}
	if !errors.Is(err, syscall.ESTALE) {
		t.Errorf("handle of a removed file (inode number reused: %v): %v, want ESTALE", reused, err)
	}
}

// TestLongSymlink: symlink(2) takes targets up to Linux's PATH_MAX-1
// (4095 bytes), stored as slow symlinks; readlink returns them, the kernel
// follows them, and they survive a remount. A target of PATH_MAX bytes is
// ENAMETOOLONG.
func TestLongSymlink(t *testing.T) {
	img, mnt, srv := mountRW(t, 64<<20)
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("reached"), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{
		"l1023": strings.Repeat("./", 511) + "f",
		"l1024": strings.Repeat("./", 511) + "/f",
		"l4095": strings.Repeat("./", 2047) + "f",
	}
	for name, target := range targets {
		p := filepath.Join(mnt, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatalf("symlink of %d bytes: %v", len(target), err)
		}
		if got, err := os.Readlink(p); err != nil || got != target {
			t.Errorf("readlink of a %d-byte target: %d bytes, %v", len(target), len(got), err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Size != int64(len(target)) || st.Blocks == 0 {
			t.Errorf("lstat of a %d-byte symlink: size %d, %d blocks, %v", len(target), st.Size, st.Blocks, err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "reached" {
			t.Errorf("following a %d-byte symlink: %q, %v", len(target), b, err)
		}
	}
	err := os.Symlink(strings.Repeat("x", 4096), filepath.Join(mnt, "l4096"))
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("symlink of 4096 bytes: %v, want ENAMETOOLONG", err)
	}
	unmountCheck(t, srv)
	mnt, _ = mountImage(t, img, Options{ReadOnly: true})
	for name, target := range targets {
		if got, err := os.Readlink(filepath.Join(mnt, name)); err != nil || got != target {
			t.Errorf("after remount, readlink of a %d-byte target: %d bytes, %v", len(target), len(got), err)
		}
	}
}
