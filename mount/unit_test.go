package mount

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/ufs"
)

// ufsSentinels names every sentinel error of package ufs. The test below
// reads ufs's source and fails when a sentinel is missing here, so a new
// one cannot slip past the errno table.
var ufsSentinels = map[string]error{
	"ErrNotUFS2":      ufs.ErrNotUFS2,
	"ErrUFS1":         ufs.ErrUFS1,
	"ErrCorrupt":      ufs.ErrCorrupt,
	"ErrFetch":        ufs.ErrFetch,
	"ErrNotFound":     ufs.ErrNotFound,
	"ErrNotDir":       ufs.ErrNotDir,
	"ErrIsDir":        ufs.ErrIsDir,
	"ErrNotSymlink":   ufs.ErrNotSymlink,
	"ErrLoop":         ufs.ErrLoop,
	"ErrNameTooLong":  ufs.ErrNameTooLong,
	"ErrReadOnly":     ufs.ErrReadOnly,
	"ErrNoAttr":       ufs.ErrNoAttr,
	"ErrInvalid":      ufs.ErrInvalid,
	"ErrNoData":       ufs.ErrNoData,
	"ErrClosed":       ufs.ErrClosed,
	"ErrExist":        ufs.ErrExist,
	"ErrNotEmpty":     ufs.ErrNotEmpty,
	"ErrTooManyLinks": ufs.ErrTooManyLinks,
	"ErrPerm":         ufs.ErrPerm,
	"ErrNoSpace":      ufs.ErrNoSpace,
	"ErrXattrSpace":   ufs.ErrXattrSpace,
	"ErrTooBig":       ufs.ErrTooBig,
	"ErrNotSupported": ufs.ErrNotSupported,
}

// exportedErrVars returns the names of the exported package-level
// variables named Err* in the non-test files of dir.
func exportedErrVars(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

func TestErrnoTableCoversUFS(t *testing.T) {
	names := exportedErrVars(t, "../ufs")
	if len(names) == 0 {
		t.Fatal("found no sentinel errors in ../ufs")
	}
	for _, name := range names {
		err, ok := ufsSentinels[name]
		if !ok {
			t.Errorf("ufs.%s is new: give it an errno in errnoTable and add it to ufsSentinels", name)
			continue
		}
		mapped := false
		for _, e := range errnoTable {
			if e.err == err {
				mapped = true
			}
		}
		if !mapped {
			t.Errorf("ufs.%s has no entry in errnoTable", name)
		}
	}
	for _, e := range errnoTable {
		if e.errno == 0 || e.errno == syscall.ENOSYS {
			t.Errorf("%v maps to %v: never answer 0 or ENOSYS for a failure", e.err, e.errno)
		}
	}
}

func TestErrno(t *testing.T) {
	tests := []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("inode 5: %w", ufs.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("%w: inode 7: block 3", ufs.ErrCorrupt), syscall.EIO},
		{fmt.Errorf("%w: %w", ufs.ErrNoSpace, ufs.ErrCorrupt), syscall.EIO},
		{ufs.ErrXattrSpace, syscall.ENOSPC},
		{fmt.Errorf("dir 9: %w", ufs.ErrNotEmpty), syscall.ENOTEMPTY},
		{fmt.Errorf("wrapped: %w", ufs.ErrNoAttr), syscall.ENODATA},
		{fmt.Errorf("read: %w", syscall.ENOSPC), syscall.ENOSPC},
		{&os.PathError{Op: "pread", Path: "/dev/x", Err: syscall.EIO}, syscall.EIO},
		{fmt.Errorf("odd: %w", syscall.ENOSYS), syscall.EIO},
		{errors.New("something else"), syscall.EIO},
	}
	for _, tt := range tests {
		if got := Errno(tt.err); got != tt.want {
			t.Errorf("Errno(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		list   string
		sloppy bool
		want   Options
		err    bool
	}{
		{"", false, Options{Flags: DefaultFlags}, false},
		{"ro", false, Options{ReadOnly: true, Flags: DefaultFlags}, false},
		{"ro,rw", false, Options{Flags: DefaultFlags}, false},
		{"allow_other,force,noacl,debug", false, Options{AllowOther: true, Force: true, NoACL: true, Debug: true, Flags: DefaultFlags}, false},
		{"defaults,noauto,nofail,_netdev,x-systemd.automount,comment=x,user,loop", false, Options{Flags: DefaultFlags}, false},
		{"suid,dev", false, Options{Flags: syscall.MS_MGC_VAL}, false},
		{"dev,noexec,noatime", false, Options{Flags: syscall.MS_NOSUID | syscall.MS_NOEXEC | syscall.MS_NOATIME}, false},
		{"fsname=/img/a.img,timeout=2.5,readahead=4096", false, Options{FsName: "/img/a.img", Timeout: 2500 * time.Millisecond, ReadAheadKB: 4096, Flags: DefaultFlags}, false},
		{"timeout=0,readahead=0", false, Options{Timeout: -1, ReadAheadKB: -1, Flags: DefaultFlags}, false},
		{"syncdelay=5", false, Options{SyncDelay: 5 * time.Second, Flags: DefaultFlags}, false},
		{"syncdelay=0", false, Options{SyncDelay: -1, Flags: DefaultFlags}, false},
		{"syncdelay=-1", false, Options{}, true},
		{"bogus", false, Options{}, true},
		{"bogus,ro", true, Options{ReadOnly: true, Flags: DefaultFlags}, false},
		{"timeout=x", false, Options{}, true},
		{"readahead=-5", false, Options{}, true},
		{"allow_root", false, Options{}, true},
	}
	for _, tt := range tests {
		var o Options
		err := ParseOptions(&o, tt.list, tt.sloppy)
		if tt.err {
			if !errors.Is(err, ErrOption) {
				t.Errorf("ParseOptions(%q) = %v, want ErrOption", tt.list, err)
			}
			continue
		}
		if err != nil || o != tt.want {
			t.Errorf("ParseOptions(%q) = %+v, %v; want %+v", tt.list, o, err, tt.want)
		}
	}
	o := Options{ReadOnly: true}
	if f := o.mountFlags(); f != DefaultFlags|syscall.MS_RDONLY {
		t.Errorf("mountFlags = %#x", f)
	}
	if d := (&Options{}).timeout(); d != DefaultTimeout {
		t.Errorf("default timeout %v", d)
	}
	if d := (&Options{Timeout: -1}).timeout(); d != 0 {
		t.Errorf("timeout=0 gives %v", d)
	}
	if d := (&Options{}).syncDelay(); d != DefaultSyncDelay {
		t.Errorf("default syncdelay %v", d)
	}
	if d := (&Options{SyncDelay: -1}).syncDelay(); d != 0 {
		t.Errorf("syncdelay=0 gives %v", d)
	}
}

func TestACLConversion(t *testing.T) {
	full := []aclEntry{
		{aclOther, aclUndefinedID, 1},
		{aclUser, 2000, 7},
		{aclUserObj, aclUndefinedID, 7},
		{aclGroup, 100, 4},
		{aclUser, 1000, 6},
		{aclMask, aclUndefinedID, 7},
		{aclGroupObj, aclUndefinedID, 5},
	}
	minimal := []aclEntry{{aclUserObj, aclUndefinedID, 6}, {aclGroupObj, aclUndefinedID, 4}, {aclOther, aclUndefinedID, 4}}
	tests := []struct {
		name    string
		entries []aclEntry
		access  bool
		mode    uint16
		want    []aclEntry // sorted, as Linux gets them; nil: invalid
	}{
		{"default ACL keeps its permissions", full, false, 0o000, []aclEntry{
			{aclUserObj, aclUndefinedID, 7}, {aclUser, 1000, 6}, {aclUser, 2000, 7},
			{aclGroupObj, aclUndefinedID, 5}, {aclGroup, 100, 4}, {aclMask, aclUndefinedID, 7}, {aclOther, aclUndefinedID, 1}}},
		{"access ACL takes owner, mask and other from the mode", full, true, 0o4750, []aclEntry{
			{aclUserObj, aclUndefinedID, 7}, {aclUser, 1000, 6}, {aclUser, 2000, 7},
			{aclGroupObj, aclUndefinedID, 5}, {aclGroup, 100, 4}, {aclMask, aclUndefinedID, 5}, {aclOther, aclUndefinedID, 0}}},
		{"without a mask the group entry follows the mode", minimal, true, 0o751, []aclEntry{
			{aclUserObj, aclUndefinedID, 7}, {aclGroupObj, aclUndefinedID, 5}, {aclOther, aclUndefinedID, 1}}},
		{"empty", nil, false, 0, []aclEntry{}},
		{"named entry without mask", []aclEntry{{aclUserObj, 0, 7}, {aclUser, 5, 7}, {aclGroupObj, 0, 7}, {aclOther, 0, 7}}, false, 0, nil},
		{"two owners", []aclEntry{{aclUserObj, 0, 7}, {aclUserObj, 0, 7}, {aclGroupObj, 0, 7}, {aclOther, 0, 7}}, false, 0, nil},
		{"no other", []aclEntry{{aclUserObj, 0, 7}, {aclGroupObj, 0, 7}}, false, 0, nil},
		{"bad tag", []aclEntry{{0x40, 0, 7}}, false, 0, nil},
		{"bad perm", []aclEntry{{aclUserObj, 0, 8}, {aclGroupObj, 0, 7}, {aclOther, 0, 7}}, false, 0, nil},
		{"duplicate user", []aclEntry{{aclUserObj, 0, 7}, {aclUser, 5, 7}, {aclUser, 5, 1}, {aclGroupObj, 0, 7}, {aclMask, 0, 7}, {aclOther, 0, 7}}, false, 0, nil},
	}
	for _, tt := range tests {
		raw, err := encodeOldACL(tt.entries)
		if err != nil {
			t.Fatalf("%s: encode: %v", tt.name, err)
		}
		if len(raw) != 388 {
			t.Fatalf("struct oldacl is %d bytes, want 388", len(raw))
		}
		lin, err := aclToLinux(raw, tt.access, tt.mode)
		if tt.want == nil {
			if !errors.Is(err, errBadACL) {
				t.Errorf("%s: aclToLinux = %v, want errBadACL", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		want := []byte{2, 0, 0, 0}
		for _, e := range tt.want {
			want = append(want, byte(e.tag), byte(e.tag>>8), byte(e.perm), byte(e.perm>>8),
				byte(e.id), byte(e.id>>8), byte(e.id>>16), byte(e.id>>24))
		}
		if !bytes.Equal(lin, want) {
			t.Errorf("%s: Linux form\n%x, want\n%x", tt.name, lin, want)
		}
		// Back to FreeBSD's form: the sorted entries, and the mode bits.
		back, perm, err := aclFromLinux(lin)
		if err != nil {
			t.Errorf("%s: aclFromLinux: %v", tt.name, err)
			continue
		}
		got, err := decodeOldACL(back)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: round trip %v, %v; want %v", tt.name, got, err, tt.want)
		}
		if tt.access && perm != tt.mode&0o777 {
			t.Errorf("%s: mode bits from the ACL 0%o, want 0%o", tt.name, perm, tt.mode&0o777)
		}
	}
	bad := [][]byte{nil, {2, 0, 0}, {3, 0, 0, 0}, {2, 0, 0, 0, 1, 0}}
	for _, b := range bad {
		if _, _, err := aclFromLinux(b); !errors.Is(err, errBadACL) {
			t.Errorf("aclFromLinux(%x) = %v", b, err)
		}
	}
	for _, b := range [][]byte{make([]byte, 387), append([]byte{33, 0, 0, 0}, make([]byte, 384)...), append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 384)...)} {
		if _, err := decodeOldACL(b); !errors.Is(err, errBadACL) {
			t.Errorf("decodeOldACL(%d bytes, cnt %x) = %v", len(b), b[:4], err)
		}
	}
	if _, err := encodeOldACL(make([]aclEntry, 33)); !errors.Is(err, errBadACL) {
		t.Errorf("33 entries: %v", err)
	}
}

func TestXattrNames(t *testing.T) {
	tests := []struct {
		linux string
		want  xattrName
		ok    bool
	}{
		{"user.comment", xattrName{ns: 1, name: "comment"}, true},
		{"trusted.dmfs", xattrName{ns: 2, name: "dmfs"}, true},
		{linuxACLAccess, xattrName{2, bsdACLAccessName, accessACL}, true},
		{linuxACLDefault, xattrName{2, bsdACLDefaultName, defaultACL}, true},
		{"trusted." + bsdACLDefaultName, xattrName{}, false},
		{"user.", xattrName{}, false},
		{"security.selinux", xattrName{}, false},
		{"system.other", xattrName{}, false},
	}
	for _, tt := range tests {
		got, ok := parseXattrName(tt.linux)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseXattrName(%q) = %+v, %v", tt.linux, got, ok)
		}
		if ok {
			if back := linuxXattrName(got.ns, got.name); back != tt.linux {
				t.Errorf("linuxXattrName(%d, %q) = %q, want %q", got.ns, got.name, back, tt.linux)
			}
		}
	}
	if n := linuxXattrName(9, "x"); n != "" {
		t.Errorf("unknown namespace maps to %q", n)
	}
}

func TestDevNumbers(t *testing.T) {
	for _, c := range []struct{ major, minor uint32 }{{0, 0}, {1, 3}, {10, 70000}, {259, 0x12345}, {4095, 0xfffff}} {
		maj, min := freeBSDDev(freeBSDMakedev(c.major, c.minor))
		if maj != c.major || min != c.minor {
			t.Errorf("FreeBSD dev %d:%d decodes as %d:%d", c.major, c.minor, maj, min)
		}
		l := linuxDev(c.major, c.minor)
		if lm, ln := l>>8&0xfff, l&0xff|l>>12&0xfff00; lm != c.major || ln != c.minor {
			t.Errorf("Linux dev %d:%d encodes as %#x (%d:%d)", c.major, c.minor, l, lm, ln)
		}
	}
}

func TestACLCreateMasq(t *testing.T) {
	tests := []struct {
		entries []aclEntry
		mode    uint16
		perm    uint16
		needed  bool
		after   []uint16 // the entries' permissions afterwards
	}{
		{[]aclEntry{{aclUserObj, 0, 7}, {aclGroupObj, 0, 5}, {aclOther, 0, 5}}, 0o666, 0o644, false, []uint16{6, 4, 4}},
		{[]aclEntry{{aclUserObj, 0, 6}, {aclGroupObj, 0, 7}, {aclOther, 0, 0}}, 0o777, 0o670, false, []uint16{6, 7, 0}},
		{[]aclEntry{{aclUserObj, 0, 7}, {aclUser, 9, 7}, {aclGroupObj, 0, 5}, {aclMask, 0, 7}, {aclOther, 0, 5}}, 0o640, 0o640, true, []uint16{6, 7, 5, 4, 0}},
	}
	for _, tt := range tests {
		e := append([]aclEntry(nil), tt.entries...)
		perm, needed := aclCreateMasq(e, tt.mode)
		var after []uint16
		for _, x := range e {
			after = append(after, x.perm)
		}
		if perm != tt.perm || needed != tt.needed || fmt.Sprint(after) != fmt.Sprint(tt.after) {
			t.Errorf("aclCreateMasq(%v, 0%o) = 0%o, %v, entries %v; want 0%o, %v, %v", tt.entries, tt.mode, perm, needed, after, tt.perm, tt.needed, tt.after)
		}
	}
}
