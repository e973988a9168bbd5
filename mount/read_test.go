package mount

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestReadOnlyTree mounts a makefs image read-only and reads it back with
// ordinary programs and system calls: the tree is the source tree, inode
// numbers and block counts are the engine's, statfs adds up.
func TestReadOnlyTree(t *testing.T) {
	spec := testutil.Small()
	src, img := makeImage(t, spec, "")
	mnt, _ := mountImage(t, img, Options{ReadOnly: true})

	if out, err := exec.Command("diff", "-r", "--no-dereference", src, mnt).CombinedOutput(); err != nil {
		t.Fatalf("diff -r: %v\n%s", err, out)
	}
	// makefs keeps whole seconds only.
	testutil.AssertSameTree(t, src, mnt, testutil.CompareOpts{Owners: true, Times: true, TimeGranularity: time.Second})

	eng := openEngine(t, img)
	inodes := map[uint64]bool{}
	err := filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		inodes[st.Ino] = true
		rel := strings.TrimPrefix(p, mnt)
		ino, err := eng.Namei(rel + "/")
		if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
			ino, err = eng.Namei(rel)
		}
		if err != nil {
			return fmt.Errorf("engine Namei(%q): %w", rel, err)
		}
		want, err := eng.Stat(ino)
		if err != nil {
			return err
		}
		if st.Ino != uint64(ino) || st.Blocks != int64(want.Blocks) || st.Nlink != uint64(want.Nlink) ||
			st.Blksize != int64(eng.Superblock().Bsize) || st.Mode != uint32(want.Mode) {
			t.Errorf("%s: ino %d blocks %d nlink %d blksize %d mode 0%o; engine: ino %d blocks %d nlink %d mode 0%o",
				rel, st.Ino, st.Blocks, st.Nlink, st.Blksize, st.Mode, ino, want.Blocks, want.Nlink, want.Mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var sfs unix.Statfs_t
	if err := unix.Statfs(mnt, &sfs); err != nil {
		t.Fatal(err)
	}
	sb := eng.Superblock()
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case sfs.Frsize != int64(sb.Fsize) || sfs.Bsize != int64(sb.Bsize) || sfs.Namelen != 255:
		t.Errorf("statfs: frsize %d bsize %d namelen %d; want %d %d 255", sfs.Frsize, sfs.Bsize, sfs.Namelen, sb.Fsize, sb.Bsize)
	case sfs.Blocks == 0 || int64(sfs.Blocks)*sfs.Frsize > fi.Size():
		t.Errorf("statfs: %d blocks of %d bytes for an image of %d bytes", sfs.Blocks, sfs.Frsize, fi.Size())
	case sfs.Bfree > sfs.Blocks || sfs.Bavail > sfs.Bfree:
		t.Errorf("statfs: blocks %d free %d avail %d", sfs.Blocks, sfs.Bfree, sfs.Bavail)
	case sfs.Files-sfs.Ffree != uint64(len(inodes)):
		// Every inode in use is in the tree: the counts must agree.
		t.Errorf("statfs: %d files, %d free: %d in use, the tree has %d", sfs.Files, sfs.Ffree, sfs.Files-sfs.Ffree, len(inodes))
	}

	// Writes fail with EROFS, not ENOSYS or ENOTSUP.
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create on a read-only mount: %v, want EROFS", err)
	}
}

// openEngine opens an image read-only with the engine, for expected
// values.
func openEngine(t testing.TB, img string) *ufs.FS {
	t.Helper()
	o := Options{ReadOnly: true}
	fsys, err := OpenTarget(img, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// TestParallelReads reads every file of the tree from many goroutines at
// once (the race detector watches) and compares with the source.
func TestParallelReads(t *testing.T) {
	src, img := makeImage(t, testutil.Small(), "")
	mnt, _ := mountImage(t, img, Options{ReadOnly: true})
	var files []string
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, strings.TrimPrefix(p, src))
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 40 {
				f := files[rng.IntN(len(files))]
				want, err := os.ReadFile(src + f)
				if err != nil {
					errs <- err
					return
				}
				got, err := os.ReadFile(mnt + f)
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("%s: %d bytes, %v; want %d bytes", f, len(got), err, len(want))
					return
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

// special is the hand-made image of the tests below.
type special struct {
	img     string
	spData  []byte // the expected content of /sp, holes as zeros
	spSize  int64
	fGen    uint32
	devMaj  uint32
	devMin  uint32
	btime   time.Time
	xattrs  map[string][]byte // Linux names and values of /f's attributes
	manyLen int
}

// freeBSDMakedev is FreeBSD's makedev(), the inverse of freeBSDDev.
func freeBSDMakedev(major, minor uint32) uint64 {
	return uint64(major&0xffffff00)<<32 | uint64(major&0xff)<<8 |
		uint64(minor&0xff00)<<24 | uint64(minor&0xffff00ff)
}

// makeSpecial builds an image with makefs and patches it into what makefs
// cannot make:
//
//	/f      "data", generation fGen, mode 0660, attributes user.comment,
//	        user.empty, trusted.dmfs and a POSIX.1e access ACL granting
//	        uid 1234 read and write (in the block /pad gave up)
//	/sp     12 blocks with holes at blocks 2-5 and 8-11, and past them
//	/dev    a character device
//	/fifo   a fifo
//	/bt     a birth time
//	/many/  manyLen entries with long names
func makeSpecial(t testing.TB) *special {
	t.Helper()
	s := &special{fGen: 0x5eed1234, devMaj: 10, devMin: 70000, manyLen: 700,
		btime: time.Unix(1234567890, 123456789)}
	src := filepath.Join(t.TempDir(), "src")
	bsize := 8192
	rng := rand.New(rand.NewPCG(7, 7))
	sp := make([]byte, 12*bsize)
	for i := range sp {
		sp[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{"f": []byte("data"), "pad": make([]byte, bsize), "sp": sp, "dev": nil, "fifo": nil, "bt": nil}
	if err := os.MkdirAll(filepath.Join(src, "many"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s.manyLen {
		name := fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("x", i%40))
		if err := os.WriteFile(filepath.Join(src, "many", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.img = filepath.Join(t.TempDir(), "special.img")
	testutil.Makefs(t, src, s.img, "")

	e := editImage(t, s.img)
	if e.sb.Bsize != int32(bsize) {
		t.Fatalf("makefs block size %d, want %d", e.sb.Bsize, bsize)
	}

	// /sp: holes.
	spIno := e.ino("/sp")
	d := e.inode(spIno)
	for _, lbn := range []int{2, 3, 4, 5, 8, 9, 10, 11} {
		d.Db[lbn] = 0
		clear(sp[lbn*bsize : (lbn+1)*bsize])
	}
	s.spSize = int64(len(sp)) + 5000
	s.spData = append(sp, make([]byte, 5000)...)
	d.Size = uint64(s.spSize)
	d.Blocks = 4 * uint64(bsize) / 512
	e.putInode(spIno, d)

	// /f: extended attributes in /pad's block.
	padIno := e.ino("/pad")
	pd := e.inode(padIno)
	blk := pd.Db[0]
	pd.Db[0], pd.Size, pd.Blocks = 0, 0, 0
	e.putInode(padIno, pd)
	acl := []aclEntry{
		{aclUserObj, aclUndefinedID, 7}, // stale: the mode gives rw-
		{aclUser, 1234, 6},
		{aclGroupObj, aclUndefinedID, 4},
		{aclMask, aclUndefinedID, 0}, // stale: the mode gives rw-
		{aclOther, aclUndefinedID, 5},
	}
	rawACL, err := encodeOldACL(acl)
	if err != nil {
		t.Fatal(err)
	}
	attrs := []ondisk.Extattr{
		{Namespace: ondisk.ExtattrNamespaceUser, Name: []byte("comment"), Value: []byte("hello, world")},
		{Namespace: ondisk.ExtattrNamespaceSystem, Name: []byte("dmfs"), Value: bytes.Repeat([]byte{7}, 1500)},
		{Namespace: ondisk.ExtattrNamespaceUser, Name: []byte("empty")},
		{Namespace: ondisk.ExtattrNamespaceSystem, Name: []byte(bsdACLAccessName), Value: rawACL},
	}
	var area []byte
	for _, a := range attrs {
		b := make([]byte, a.Len())
		if err := a.Encode(b); err != nil {
			t.Fatal(err)
		}
		area = append(area, b...)
	}
	e.write(e.sb.FragOffset(blk), area)
	fIno := e.ino("/f")
	d = e.inode(fIno)
	d.Extsize = uint32(len(area))
	d.Extb[0] = blk
	d.Gen = s.fGen
	d.Mode = ondisk.IFREG | 0o660
	e.putInode(fIno, d)
	linuxACL := []byte{2, 0, 0, 0, // version
		aclUserObj, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		aclUser, 0, 6, 0, 0xd2, 0x04, 0, 0,
		aclGroupObj, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		aclMask, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		aclOther, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	s.xattrs = map[string][]byte{"user.comment": attrs[0].Value, "trusted.dmfs": attrs[1].Value,
		"user.empty": nil, linuxACLAccess: linuxACL}

	// /dev, /fifo, /bt.
	devIno := e.ino("/dev")
	d = e.inode(devIno)
	d.Mode = ondisk.IFCHR | 0o620
	d.Db[0] = ondisk.Frag(freeBSDMakedev(s.devMaj, s.devMin))
	e.putInode(devIno, d)
	fifoIno := e.ino("/fifo")
	d = e.inode(fifoIno)
	d.Mode = ondisk.IFIFO | 0o644
	e.putInode(fifoIno, d)
	btIno := e.ino("/bt")
	d = e.inode(btIno)
	d.Birthtime, d.Birthnsec = s.btime.Unix(), int32(s.btime.Nanosecond())
	e.putInode(btIno, d)
	return s
}

func TestSparseSeek(t *testing.T) {
	s := makeSpecial(t)
	mnt, _ := mountImage(t, s.img, Options{ReadOnly: true})
	p := filepath.Join(mnt, "sp")
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.spData) {
		t.Errorf("content of a sparse file differs (%d bytes, want %d)", len(got), len(s.spData))
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const k = 8192
	tests := []struct {
		off    int64
		whence int
		want   int64
		errno  syscall.Errno
	}{
		{0, unix.SEEK_DATA, 0, 0},
		{0, unix.SEEK_HOLE, 2 * k, 0},
		{100, unix.SEEK_HOLE, 2 * k, 0},
		{2 * k, unix.SEEK_DATA, 6 * k, 0},
		{3*k + 5, unix.SEEK_DATA, 6 * k, 0},
		{6*k + 1, unix.SEEK_DATA, 6*k + 1, 0},
		{6 * k, unix.SEEK_HOLE, 8 * k, 0},
		{8 * k, unix.SEEK_DATA, 0, syscall.ENXIO},
		{8 * k, unix.SEEK_HOLE, 8 * k, 0},
		{s.spSize - 1, unix.SEEK_HOLE, s.spSize - 1, 0},
		{s.spSize, unix.SEEK_HOLE, 0, syscall.ENXIO},
		{s.spSize + 10, unix.SEEK_DATA, 0, syscall.ENXIO},
	}
	for _, tt := range tests {
		got, err := unix.Seek(int(f.Fd()), tt.off, tt.whence)
		switch {
		case tt.errno != 0 && !errors.Is(err, tt.errno):
			t.Errorf("lseek(%d, %d) = %d, %v; want %v", tt.off, tt.whence, got, err, tt.errno)
		case tt.errno == 0 && (err != nil || got != tt.want):
			t.Errorf("lseek(%d, %d) = %d, %v; want %d", tt.off, tt.whence, got, err, tt.want)
		}
	}
}

func TestXattrsAndACL(t *testing.T) {
	s := makeSpecial(t)
	mnt, _ := mountImage(t, s.img, Options{ReadOnly: true, AllowOther: true})
	p := filepath.Join(mnt, "f")

	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	want := []string{linuxACLAccess, "trusted.dmfs", "user.comment", "user.empty"}
	if !slices.Equal(names, want) {
		t.Errorf("listxattr = %q, want %q", names, want)
	}
	for name, val := range s.xattrs {
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil || !bytes.Equal(buf[:n], val) {
			t.Errorf("getxattr(%s) = %x, %v; want %x", name, buf[:n], err, val)
		}
		if len(val) > 1 {
			if _, err := unix.Lgetxattr(p, name, buf[:1]); !errors.Is(err, syscall.ERANGE) {
				t.Errorf("getxattr(%s) into 1 byte: %v, want ERANGE", name, err)
			}
		}
	}
	for _, name := range []string{"user.missing", "security.selinux", "trusted." + bsdACLAccessName, linuxACLDefault} {
		if _, err := unix.Lgetxattr(p, name, buf); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("getxattr(%s): %v, want ENODATA", name, err)
		}
	}

	// The kernel enforces the ACL: uid 1234 may read the 0660 root file,
	// uid 1235 may not.
	for _, c := range []struct {
		uid uint32
		ok  bool
	}{{1234, true}, {1235, false}} {
		cmd := exec.Command("cat", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.uid}}
		out, err := cmd.CombinedOutput()
		if c.ok && (err != nil || string(out) != "data") {
			t.Errorf("cat as uid %d: %q, %v; the ACL grants read", c.uid, out, err)
		}
		if !c.ok && (err == nil || !strings.Contains(string(out), "Permission denied")) {
			t.Errorf("cat as uid %d: %q, %v; want permission denied", c.uid, out, err)
		}
	}
}

func TestSpecialFiles(t *testing.T) {
	s := makeSpecial(t)
	mnt, _ := mountImage(t, s.img, Options{ReadOnly: true, Flags: syscall.MS_NOSUID})
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "dev"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFCHR|0o620 || unix.Major(st.Rdev) != s.devMaj || unix.Minor(st.Rdev) != s.devMin {
		t.Errorf("dev: mode 0%o rdev %d:%d; want 0%o %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev),
			unix.S_IFCHR|0o620, s.devMaj, s.devMin)
	}
	if err := unix.Lstat(filepath.Join(mnt, "fifo"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode 0%o, %v", st.Mode, err)
	}

	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Join(mnt, "bt"), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &sx); err != nil {
		t.Fatal(err)
	}
	if sx.Mask&unix.STATX_BTIME == 0 || sx.Btime.Sec != s.btime.Unix() || sx.Btime.Nsec != uint32(s.btime.Nanosecond()) {
		t.Errorf("statx: mask 0x%x btime %d.%09d; want %d.%09d", sx.Mask, sx.Btime.Sec, sx.Btime.Nsec, s.btime.Unix(), s.btime.Nanosecond())
	}

	// d_type of every entry of the root.
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]os.FileMode{}
	for _, e := range ents {
		types[e.Name()] = e.Type()
	}
	wantTypes := map[string]os.FileMode{"f": 0, "sp": 0, "pad": 0, "bt": 0, "many": os.ModeDir,
		"dev": os.ModeDevice | os.ModeCharDevice, "fifo": os.ModeNamedPipe}
	for name, typ := range wantTypes {
		if got, ok := types[name]; !ok || got != typ {
			t.Errorf("readdir: %s has type %v (listed %v), want %v", name, got, ok, typ)
		}
	}
}

// dirent64 is one parsed linux_dirent64.
type dirent64 struct {
	ino  uint64
	off  int64
	name string
}

// getdents reads one getdents64 batch of fd with a buffer of size bytes.
func getdents(t *testing.T, fd, size int) []dirent64 {
	t.Helper()
	buf := make([]byte, size)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	var out []dirent64
	for b := buf[:n]; len(b) > 0; {
		reclen := int(binary.LittleEndian.Uint16(b[16:]))
		name := b[19:reclen]
		out = append(out, dirent64{
			ino:  binary.LittleEndian.Uint64(b),
			off:  int64(binary.LittleEndian.Uint64(b[8:])),
			name: string(name[:bytes.IndexByte(name, 0)]),
		})
		b = b[reclen:]
	}
	return out
}

// TestReaddirSeek lists a directory bigger than one engine batch and one
// kernel buffer, then seeks to offsets handed out and checks the listing
// resumes at the next entry (telldir/seekdir).
func TestReaddirSeek(t *testing.T) {
	s := makeSpecial(t)
	mnt, _ := mountImage(t, s.img, Options{ReadOnly: true})
	d, err := os.Open(filepath.Join(mnt, "many"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fd := int(d.Fd())
	var all []dirent64
	for {
		batch := getdents(t, fd, 4096)
		if len(batch) == 0 {
			break
		}
		all = append(all, batch...)
	}
	if len(all) != s.manyLen+2 {
		t.Fatalf("%d entries, want %d", len(all), s.manyLen+2)
	}
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.name] {
			t.Errorf("entry %s listed twice", e.name)
		}
		seen[e.name] = true
	}
	for _, i := range []int{0, 1, 2, 299, 300, 512, len(all) - 2} {
		if _, err := unix.Seek(fd, all[i].off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		next := getdents(t, fd, 1024)
		if len(next) == 0 || next[0].name != all[i+1].name || next[0].ino != all[i+1].ino {
			t.Errorf("after seeking to entry %d's d_off %d: got %v, want %s", i, all[i].off, next[:min(1, len(next))], all[i+1].name)
		}
	}
	if _, err := unix.Seek(fd, all[len(all)-1].off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if rest := getdents(t, fd, 1024); len(rest) != 0 {
		t.Errorf("after the last entry's d_off: %d more entries", len(rest))
	}
}

// TestFileHandles exports file handles on one mount and opens them on a
// second mount of the same image (what an NFS server does after a
// restart); a handle with the wrong generation is stale.
func TestFileHandles(t *testing.T) {
	s := makeSpecial(t)
	mnt1, srv1 := mountImage(t, s.img, Options{ReadOnly: true})
	type handle struct {
		path string
		h    unix.FileHandle
	}
	var hs []handle
	for _, p := range []string{"f", "many", "many/entry-0007-xxxxxxx", "sp"} {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, filepath.Join(mnt1, p), 0)
		if err != nil {
			t.Fatalf("name_to_handle_at(%s): %v", p, err)
		}
		hs = append(hs, handle{p, h})
	}
	unmountCheck(t, srv1)

	mnt2, _ := mountImage(t, s.img, Options{ReadOnly: true})
	root, err := os.Open(mnt2)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, h := range hs {
		fd, err := unix.OpenByHandleAt(int(root.Fd()), h.h, unix.O_RDONLY)
		if err != nil {
			t.Errorf("open_by_handle_at(%s): %v", h.path, err)
			continue
		}
		var got, want unix.Stat_t
		unix.Fstat(fd, &got)
		unix.Close(fd)
		if err := unix.Lstat(filepath.Join(mnt2, h.path), &want); err != nil {
			t.Fatal(err)
		}
		if got.Ino != want.Ino || got.Mode != want.Mode {
			t.Errorf("handle of %s opened inode %d mode 0%o, want %d 0%o", h.path, got.Ino, got.Mode, want.Ino, want.Mode)
		}
	}
	// FUSE's handle: node ID (2 × 32 bits), then the generation.
	b := hs[0].h.Bytes()
	if len(b) < 12 || binary.LittleEndian.Uint32(b[8:]) != s.fGen {
		t.Fatalf("handle of f %x does not carry generation %#x", b, s.fGen)
	}
	b[8] ^= 1
	if fd, err := unix.OpenByHandleAt(int(root.Fd()), unix.NewFileHandle(hs[0].h.Type(), b), unix.O_RDONLY); !errors.Is(err, syscall.ESTALE) {
		if err == nil {
			unix.Close(fd)
		}
		t.Errorf("handle with a wrong generation: %v, want ESTALE", err)
	}
}

// TestExternalUnmount ends mounts with umount(8) and fusermount3 -u: the
// server returns from Wait and nothing stays mounted.
func TestExternalUnmount(t *testing.T) {
	_, img := makeImage(t, testutil.Small(), "")
	for _, cmd := range [][]string{{"umount"}, {"fusermount3", "-u"}} {
		mnt, srv := mountImage(t, img, Options{ReadOnly: true})
		if _, err := os.ReadDir(mnt); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(cmd[0], append(cmd[1:], mnt)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		unmountCheck(t, srv)
	}
}

// TestBusyUnmount unmounts while a file is open: Unmount detaches the
// mount and the server keeps serving the open file until it is closed.
func TestBusyUnmount(t *testing.T) {
	src, img := makeImage(t, testutil.Small(), "")
	mnt, srv := mountImage(t, img, Options{ReadOnly: true})
	f, err := os.Open(filepath.Join(mnt, "deep1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Error("still in /proc/mounts after a lazy unmount")
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Errorf("reading an open directory after the lazy unmount: %v", err)
	}
	want, _ := os.ReadDir(filepath.Join(src, "deep1"))
	if len(names) != len(want) {
		t.Errorf("%d names after the lazy unmount, want %d", len(names), len(want))
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case <-done:
		t.Error("server stopped while a file was still open")
	case <-time.After(200 * time.Millisecond):
	}
	f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(20 * time.Second):
		t.Error("server did not stop after the last file was closed")
	}
}

// TestMountPolicy: a filesystem not cleanly unmounted and without soft
// updates is refused read-write with a message to run fsck (or use -o
// force), mounts read-only, and with force mounts read-write: writes land,
// and the unmount leaves it as FreeBSD's mount -f does, still marked not
// clean (fs_clean 0, FS_UNCLEAN), so that the next ordinary mount is
// refused again until fsck has run.
func TestMountPolicy(t *testing.T) {
	src, img := makeImage(t, testutil.Small(), "32m")
	e := editImage(t, img)
	e.sb.Clean = 0
	e.sb.Flags &^= ondisk.FSDoSoftdep
	e.putSuperblock()

	refused := func(when string) {
		t.Helper()
		o := Options{}
		fsys, err := OpenTarget(img, &o)
		if fsys != nil {
			fsys.Close()
		}
		if !errors.Is(err, ErrNeedsFsck) || !strings.Contains(err.Error(), "run ufs2 fsck") || !strings.Contains(err.Error(), "-o force") {
			t.Errorf("%s: read-write open of an unclean filesystem: %v, want ErrNeedsFsck naming fsck and -o force", when, err)
		}
	}
	refused("before")
	mnt, srv := mountImage(t, img, Options{ReadOnly: true})
	testutil.AssertSameTree(t, src, mnt, testutil.CompareOpts{})
	unmountCheck(t, srv)

	mnt, srv = mountImage(t, img, Options{Force: true})
	if srv.ReadOnly() {
		t.Fatal("forced mount is read-only")
	}
	testutil.AssertSameTree(t, src, mnt, testutil.CompareOpts{})
	data := bytes.Repeat([]byte("forced "), 20000)
	if err := os.WriteFile(filepath.Join(mnt, "forced"), data, 0o644); err != nil {
		t.Fatalf("writing through a forced mount: %v", err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "newdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	unmountCheck(t, srv)

	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	sb, _, err := ondisk.FindSuperblock(dev)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Clean != 0 || sb.Flags&ondisk.FSUnclean == 0 || sb.Flags&ondisk.FSDoSoftdep != 0 {
		t.Errorf("after a forced mount: fs_clean %d flags 0x%x, want not clean with FS_UNCLEAN (and no soft updates)", sb.Clean, sb.Flags)
	}
	var out strings.Builder
	rep, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.No, Force: true, Output: &out})
	dev.Close()
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("fsck -n -f after a forced mount: %v\n%s", err, out.String())
	}
	refused("after the forced mount")

	mnt, srv = mountImage(t, img, Options{ReadOnly: true})
	if got, err := os.ReadFile(filepath.Join(mnt, "forced")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the file written through the forced mount: %d bytes, %v", len(got), err)
	}
	if fi, err := os.Stat(filepath.Join(mnt, "newdir")); err != nil || !fi.IsDir() {
		t.Errorf("the directory made through the forced mount: %v", err)
	}
	unmountCheck(t, srv)

	// fsck marks it clean; then it mounts read-write without force.
	dev, err = blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.Yes, Output: &out}); err != nil {
		t.Fatalf("fsck -y: %v\n%s", err, out.String())
	}
	dev.Close()
	mnt, srv = mountImage(t, img, Options{})
	if srv.ReadOnly() {
		t.Error("read-only after fsck")
	}
	unmountCheck(t, srv)
	checkImage(t, img)
}

func TestMountErrors(t *testing.T) {
	_, img := makeImage(t, testutil.Small(), "")
	eng := openEngine(t, img)
	if _, err := Mount(filepath.Join(t.TempDir(), "missing"), eng, Options{ReadOnly: true}); !errors.Is(err, ErrMountpoint) {
		t.Errorf("missing mount point: %v", err)
	}
	if _, err := Mount(img, eng, Options{ReadOnly: true}); !errors.Is(err, ErrMountpoint) {
		t.Errorf("file as mount point: %v", err)
	}
	if _, err := OpenTarget(filepath.Join(t.TempDir(), "none.img"), &Options{ReadOnly: true}); err == nil {
		t.Error("missing image opened")
	}
	notUFS := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(notUFS, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTarget(notUFS, &Options{ReadOnly: true}); !errors.Is(err, ufs.ErrNotUFS2) {
		t.Errorf("zeroed image: %v, want ufs.ErrNotUFS2", err)
	}
}
