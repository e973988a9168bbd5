package tools

import (
	"context"
	"errors"
	"os/user"
	"strconv"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		spec  string
		umask uint16
		old   uint16
		dir   bool
		want  uint16
	}{
		{"755", 0, 0o4644, false, 0o755},
		{"4755", 0, 0, false, 0o4755},
		{"0", 0, 0o777, false, 0},
		{"u+x", 0, 0o644, false, 0o744},
		{"u+x,g-w,o=r", 0, 0o666, false, 0o744},
		{"a=rw", 0, 0o4777, false, 0o666},
		{"go-rwx", 0, 0o777, false, 0o700},
		{"+x", 0o022, 0o644, false, 0o755},
		{"+w", 0o022, 0o444, false, 0o644},
		{"-w", 0o022, 0o666, false, 0o466},
		{"=r", 0o022, 0o777, false, 0o466},
		{"a+X", 0, 0o644, false, 0o644},
		{"a+X", 0, 0o744, false, 0o755},
		{"a+X", 0, 0o600, true, 0o711},
		{"u+s", 0, 0o755, false, 0o4755},
		{"g+s", 0, 0o755, true, 0o2755},
		{"+s", 0, 0o755, false, 0o6755},
		{"ug-s", 0, 0o6755, false, 0o755},
		{"+t", 0, 0o777, true, 0o1777},
		{"o+t", 0, 0o777, true, 0o777}, // only o: t ignored, as BSD does
		{"a+t", 0, 0o777, true, 0o1777},
		{"u=rwx,g=u,o=g", 0, 0o000, false, 0o777},
		{"g=u-w", 0, 0o750, false, 0o750&^0o070 | 0o050},
		{"u+r-w", 0, 0o200, false, 0o400},
		{"u=", 0, 0o4755, false, 0o055},
	} {
		m, err := ParseMode(tt.spec, tt.umask)
		if err != nil {
			t.Errorf("ParseMode(%q): %v", tt.spec, err)
			continue
		}
		if got := m.Apply(tt.old, tt.dir); got != tt.want {
			t.Errorf("ParseMode(%q, umask %03o).Apply(0%o, dir %v) = 0%o, want 0%o", tt.spec, tt.umask, tt.old, tt.dir, got, tt.want)
		}
	}
	for _, bad := range []string{"", "8", "07777777", "u", "u+q", "z+x", "u+x,", "u+x,,g+w", "u+ug"} {
		if _, err := ParseMode(bad, 0); !errors.Is(err, ErrBadMode) {
			t.Errorf("ParseMode(%q) = %v, want ErrBadMode", bad, err)
		}
	}
}

func TestParseOwner(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Fatal(err)
	}
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Fatal(err)
	}
	p := func(v uint32) *uint32 { return &v }
	for _, tt := range []struct {
		spec     string
		uid, gid *uint32
	}{
		{"12", p(12), nil},
		{"12:34", p(12), p(34)},
		{":34", nil, p(34)},
		{"12:", p(12), nil},
		{"12.34", p(12), p(34)},
		{root.Username, p(0), nil},
		{root.Username + ":" + rootGroup.Name, p(0), p(0)},
		{"5:" + rootGroup.Name, p(5), p(0)},
	} {
		uid, gid, err := ParseOwner(tt.spec)
		if err != nil {
			t.Errorf("ParseOwner(%q): %v", tt.spec, err)
			continue
		}
		str := func(v *uint32) string {
			if v == nil {
				return "nil"
			}
			return strconv.Itoa(int(*v))
		}
		if str(uid) != str(tt.uid) || str(gid) != str(tt.gid) {
			t.Errorf("ParseOwner(%q) = %s:%s, want %s:%s", tt.spec, str(uid), str(gid), str(tt.uid), str(tt.gid))
		}
	}
	for _, bad := range []string{"", ":", "no-such-user-here", "0:no-such-group-here"} {
		if _, _, err := ParseOwner(bad); !errors.Is(err, ErrBadOwner) {
			t.Errorf("ParseOwner(%q) = %v, want ErrBadOwner", bad, err)
		}
	}
}

// editFS is a filesystem holding /d/f (a file with two links, the other
// /d/e/g), /d/e, /l -> d (a symlink), and /x (a file).
func editFS(t *testing.T) *ufs.FS {
	t.Helper()
	img := newImage(t, 64<<20)
	fsys := openRW(t, img, false)
	t.Cleanup(func() { closeChecked(t, fsys, img) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := Mkdir(fsys, "/d/e", MkdirOptions{Parents: true, Mode: 0o750, ParentMode: 0o755, UID: 3})
	must(err)
	d, err := fsys.Namei("/d")
	must(err)
	f, err := fsys.Create(d, "f", 0o644, 1, 2)
	must(err)
	_, err = fsys.WriteAt(f, []byte("data"), 0)
	must(err)
	must(Link(fsys, "/d/f", "/d/e/g"))
	must(Symlink(fsys, "d", "/l", 0))
	_, err = fsys.Create(fsys.Root(), "x", 0o600, 0, 0)
	must(err)
	return fsys
}

func stat(t *testing.T, fsys *ufs.FS, p string) ufs.Stat {
	t.Helper()
	ino, err := fsys.Namei(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestMkdir(t *testing.T) {
	fsys := editFS(t)
	if st := stat(t, fsys, "/d"); st.Perm() != 0o755 || st.UID != 3 || st.GID != 0 {
		t.Errorf("/d: mode 0%o owner %d:%d", st.Perm(), st.UID, st.GID)
	}
	if st := stat(t, fsys, "/d/e"); st.Perm() != 0o750 || st.Nlink != 2 {
		t.Errorf("/d/e: mode 0%o links %d", st.Perm(), st.Nlink)
	}
	for _, tt := range []struct {
		path string
		opts MkdirOptions
		want error
	}{
		{"/d", MkdirOptions{}, ufs.ErrExist},
		{"/d", MkdirOptions{Parents: true}, nil},
		{"/x", MkdirOptions{Parents: true}, ufs.ErrExist},
		{"/no/such", MkdirOptions{}, ufs.ErrNotFound},
		{"/x/y", MkdirOptions{Parents: true}, ufs.ErrNotDir},
		{"/", MkdirOptions{}, ufs.ErrInvalid},
		{"/l/new", MkdirOptions{Mode: 0o700}, nil}, // through the symlink
	} {
		if _, err := Mkdir(fsys, tt.path, tt.opts); !errors.Is(err, tt.want) {
			t.Errorf("Mkdir(%s, %+v) = %v, want %v", tt.path, tt.opts, err, tt.want)
		}
	}
	if st := stat(t, fsys, "/d/new"); st.Perm() != 0o700 {
		t.Errorf("/d/new: mode 0%o", st.Perm())
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		path string
		opts RemoveOptions
		want error
		gone []string
		kept []string
	}{
		{"/x", RemoveOptions{}, nil, []string{"/x"}, []string{"/d"}},
		{"/d", RemoveOptions{}, ufs.ErrIsDir, nil, []string{"/d/f"}},
		{"/d", RemoveOptions{Recursive: true}, nil, []string{"/d"}, []string{"/x", "/l"}},
		{"/l", RemoveOptions{Recursive: true}, nil, []string{"/l"}, []string{"/d/e"}}, // the link, not the directory
		{"/d/e/g", RemoveOptions{}, nil, []string{"/d/e/g"}, []string{"/d/f"}},
		{"/missing", RemoveOptions{}, ufs.ErrNotFound, nil, nil},
		{"/missing", RemoveOptions{Force: true}, nil, nil, nil},
		{"/no/such/thing", RemoveOptions{Force: true}, nil, nil, nil},
		{"/x/y", RemoveOptions{Force: true}, ufs.ErrNotDir, nil, nil},
		{"/", RemoveOptions{Recursive: true, Force: true}, ErrRefused, nil, []string{"/d"}},
		{"/d/..", RemoveOptions{Recursive: true}, ErrRefused, nil, []string{"/d"}},
		{"d/e/.", RemoveOptions{Recursive: true}, ErrRefused, nil, []string{"/d/e"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			fsys := editFS(t)
			if err := Remove(ctx, fsys, tt.path, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("Remove(%s, %+v) = %v, want %v", tt.path, tt.opts, err, tt.want)
			}
			for _, p := range tt.gone {
				if _, err := fsys.Namei(p); !errors.Is(err, ufs.ErrNotFound) {
					t.Errorf("%s: %v after removal", p, err)
				}
			}
			for _, p := range tt.kept {
				stat(t, fsys, p)
			}
		})
	}
}

func TestRenameLink(t *testing.T) {
	for _, tt := range []struct {
		name     string
		op       func(fsys *ufs.FS) error
		want     error
		gone     []string
		kept     []string
		sameInos [][2]string
	}{
		{"rename", func(fsys *ufs.FS) error { return Rename(fsys, "/x", "/y") }, nil, []string{"/x"}, []string{"/y"}, nil},
		{"rename into a directory", func(fsys *ufs.FS) error { return Rename(fsys, "/x", "/d/e") }, nil, []string{"/x"}, []string{"/d/e/x"}, nil},
		{"rename into a directory through a symlink", func(fsys *ufs.FS) error { return Rename(fsys, "/x", "/l") }, nil, []string{"/x"}, []string{"/d/x"}, nil},
		{"rename over a file", func(fsys *ufs.FS) error { return Rename(fsys, "/d/f", "/x") }, nil, []string{"/d/f"}, []string{"/x"}, [][2]string{{"/x", "/d/e/g"}}},
		{"rename a directory", func(fsys *ufs.FS) error { return Rename(fsys, "/d/e", "/e2") }, nil, []string{"/d/e"}, []string{"/e2/g"}, nil},
		{"rename below itself", func(fsys *ufs.FS) error { return Rename(fsys, "/d", "/d/e/z") }, ufs.ErrInvalid, nil, []string{"/d/e"}, nil},
		{"rename the root", func(fsys *ufs.FS) error { return Rename(fsys, "/", "/z") }, ufs.ErrInvalid, nil, nil, nil},
		{"rename missing", func(fsys *ufs.FS) error { return Rename(fsys, "/nope", "/z") }, ufs.ErrNotFound, nil, nil, nil},
		{"rename a directory over a file", func(fsys *ufs.FS) error { return Rename(fsys, "/d/e", "/x") }, ufs.ErrNotDir, nil, []string{"/x", "/d/e"}, nil},
		{"hard link", func(fsys *ufs.FS) error { return Link(fsys, "/x", "/x2") }, nil, nil, nil, [][2]string{{"/x", "/x2"}}},
		{"hard link into a directory", func(fsys *ufs.FS) error { return Link(fsys, "/x", "/d") }, nil, nil, nil, [][2]string{{"/x", "/d/x"}}},
		{"hard link of a symlink", func(fsys *ufs.FS) error { return Link(fsys, "/l", "/l2") }, nil, nil, nil, [][2]string{{"/l", "/l2"}}},
		{"hard link over a file", func(fsys *ufs.FS) error { return Link(fsys, "/x", "/d/f") }, ufs.ErrExist, nil, nil, nil},
		{"hard link of a directory", func(fsys *ufs.FS) error { return Link(fsys, "/d/e", "/e2") }, ufs.ErrIsDir, []string{"/e2"}, nil, nil},
		{"symlink", func(fsys *ufs.FS) error { return Symlink(fsys, "/no/where", "/s", 7) }, nil, nil, []string{"/s"}, nil},
		{"symlink into a directory", func(fsys *ufs.FS) error { return Symlink(fsys, "../x", "/d", 7) }, nil, nil, []string{"/d/x"}, nil},
		{"symlink over a file", func(fsys *ufs.FS) error { return Symlink(fsys, "x", "/x", 7) }, ufs.ErrExist, nil, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := editFS(t)
			if err := tt.op(fsys); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, p := range tt.gone {
				if _, err := fsys.Namei(p); !errors.Is(err, ufs.ErrNotFound) {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, p := range tt.kept {
				stat(t, fsys, p)
			}
			for _, pair := range tt.sameInos {
				if a, b := stat(t, fsys, pair[0]), stat(t, fsys, pair[1]); a.Ino != b.Ino {
					t.Errorf("%s is inode %d, %s %d", pair[0], a.Ino, pair[1], b.Ino)
				}
			}
		})
	}
	fsys := editFS(t)
	if err := Symlink(fsys, "../f", "/d/e/s", 7); err != nil {
		t.Fatal(err)
	}
	st := stat(t, fsys, "/d/e/s")
	target, err := fsys.Readlink(st.Ino)
	if err != nil || target != "../f" || st.UID != 7 || st.GID != stat(t, fsys, "/d/e").GID {
		t.Errorf("symlink: %q %v, owner %d:%d", target, err, st.UID, st.GID)
	}
}

func TestChmodChown(t *testing.T) {
	ctx := context.Background()
	fsys := editFS(t)
	m, err := ParseMode("u+x,g-w,o=r", 0o022)
	if err != nil {
		t.Fatal(err)
	}
	if err := Chmod(ctx, fsys, "/x", m, false); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, fsys, "/x"); st.Perm() != 0o704 {
		t.Errorf("/x: 0%o, want 0704", st.Perm())
	}
	m, _ = ParseMode("go=u", 0)
	if err := Chmod(ctx, fsys, "/l", m, true); err != nil { // follows /l to /d
		t.Fatal(err)
	}
	for p, want := range map[string]uint16{"/d": 0o777, "/d/e": 0o777, "/d/f": 0o666, "/x": 0o704} {
		if st := stat(t, fsys, p); st.Perm() != want {
			t.Errorf("%s: 0%o, want 0%o", p, st.Perm(), want)
		}
	}
	if st := stat(t, fsys, "/l"); st.Perm() != 0o777 || st.Type() != ondisk.IFLNK {
		t.Errorf("/l changed: 0%o", st.Mode)
	}

	uid, gid := uint32(100), uint32(200)
	if err := Chown(ctx, fsys, "/l", &uid, nil, false, true); err != nil { // -h: the link
		t.Fatal(err)
	}
	if st := stat(t, fsys, "/l"); st.UID != 100 {
		t.Errorf("/l uid %d", st.UID)
	}
	if st := stat(t, fsys, "/d"); st.UID == 100 {
		t.Error("chown -h followed the symlink")
	}
	if err := Chown(ctx, fsys, "/", nil, &gid, true, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/d", "/d/e", "/d/f", "/l", "/x", "/.snap"} {
		if st := stat(t, fsys, p); st.GID != 200 {
			t.Errorf("%s: gid %d after chown -R :200 /", p, st.GID)
		}
	}
	if st := stat(t, fsys, "/d/f"); st.UID != 1 {
		t.Errorf("/d/f uid %d changed by a group-only chown", st.UID)
	}
	if err := Chmod(ctx, fsys, "/nope", m, false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("chmod of a missing path: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Chown(cctx, fsys, "/", &uid, nil, true, false); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled chown: %v", err)
	}
}
