package ufs

import (
	"errors"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// TestRename runs each POSIX case of rename on a fresh tree
//
//	/a/f  /a/g (a link of f)  /a/sub/x  /b/h  /b/empty/  /b/full/y
//
// and checks the error, the entries and the link counts.
func TestRename(t *testing.T) {
	type tree struct {
		fs                     *FS
		a, b, sub, empty, full ondisk.Ino
		f, h, x                ondisk.Ino
		root                   ondisk.Ino
	}
	build := func(t *testing.T) *tree {
		m := newMemFS(t, geomSmall, Options{})
		fsys := m.fs
		tr := &tree{fs: fsys, root: fsys.Root()}
		mk := mustIno(t)
		tr.a = mk(fsys.Mkdir(tr.root, "a", 0o755, 0, 0))
		tr.b = mk(fsys.Mkdir(tr.root, "b", 0o755, 0, 0))
		tr.f = mk(fsys.Create(tr.a, "f", 0o644, 0, 0))
		must(t, fsys.Link(tr.f, tr.a, "g"))
		tr.sub = mk(fsys.Mkdir(tr.a, "sub", 0o755, 0, 0))
		tr.x = mk(fsys.Create(tr.sub, "x", 0o644, 0, 0))
		tr.h = mk(fsys.Create(tr.b, "h", 0o644, 0, 0))
		tr.empty = mk(fsys.Mkdir(tr.b, "empty", 0o755, 0, 0))
		tr.full = mk(fsys.Mkdir(tr.b, "full", 0o755, 0, 0))
		mk(fsys.Create(tr.full, "y", 0o644, 0, 0))
		return tr
	}
	type entry struct {
		dir  func(*tree) ondisk.Ino
		name string
		ino  func(*tree) ondisk.Ino // nil: must not exist
	}
	dirA := func(tr *tree) ondisk.Ino { return tr.a }
	dirB := func(tr *tree) ondisk.Ino { return tr.b }
	dirSub := func(tr *tree) ondisk.Ino { return tr.sub }
	dirEmpty := func(tr *tree) ondisk.Ino { return tr.empty }
	ino := func(f func(*tree) ondisk.Ino) func(*tree) ondisk.Ino { return f }
	tests := []struct {
		name    string
		od      func(*tree) ondisk.Ino
		on      string
		nd      func(*tree) ondisk.Ino
		nn      string
		flags   RenameFlags
		want    error
		entries []entry
		nlinks  map[string]int16 // by entry path relative to the tree struct
	}{
		{name: "file within a directory", od: dirA, on: "f", nd: dirA, nn: "f2",
			entries: []entry{{dirA, "f", nil}, {dirA, "f2", ino(func(tr *tree) ondisk.Ino { return tr.f })}}},
		{name: "file to another directory", od: dirA, on: "f", nd: dirB, nn: "f",
			entries: []entry{{dirA, "f", nil}, {dirB, "f", ino(func(tr *tree) ondisk.Ino { return tr.f })}}},
		{name: "over an existing file", od: dirA, on: "f", nd: dirB, nn: "h",
			entries: []entry{{dirA, "f", nil}, {dirB, "h", ino(func(tr *tree) ondisk.Ino { return tr.f })}}},
		{name: "two links of one inode: nothing happens", od: dirA, on: "f", nd: dirA, nn: "g",
			entries: []entry{{dirA, "f", ino(func(tr *tree) ondisk.Ino { return tr.f })}, {dirA, "g", ino(func(tr *tree) ondisk.Ino { return tr.f })}}},
		{name: "directory to another parent", od: dirA, on: "sub", nd: dirB, nn: "sub",
			entries: []entry{{dirA, "sub", nil}, {dirB, "sub", ino(func(tr *tree) ondisk.Ino { return tr.sub })},
				{dirSub, "..", ino(func(tr *tree) ondisk.Ino { return tr.b })}},
			nlinks: map[string]int16{"a": 2, "b": 5}},
		{name: "directory over an empty directory", od: dirA, on: "sub", nd: dirB, nn: "empty",
			entries: []entry{{dirB, "empty", ino(func(tr *tree) ondisk.Ino { return tr.sub })},
				{dirSub, "..", ino(func(tr *tree) ondisk.Ino { return tr.b })}},
			nlinks: map[string]int16{"a": 2, "b": 4}},
		{name: "directory over a full directory", od: dirA, on: "sub", nd: dirB, nn: "full", want: ErrNotEmpty},
		{name: "directory over a file", od: dirA, on: "sub", nd: dirB, nn: "h", want: ErrNotDir},
		{name: "file over a directory", od: dirA, on: "f", nd: dirB, nn: "empty", want: ErrIsDir},
		{name: "directory under itself", od: func(tr *tree) ondisk.Ino { return tr.root }, on: "a", nd: dirSub, nn: "a", want: ErrInvalid},
		{name: "directory into itself", od: dirA, on: "sub", nd: dirSub, nn: "s", want: ErrInvalid},
		{name: "dot", od: dirA, on: ".", nd: dirB, nn: "x", want: ErrInvalid},
		{name: "missing", od: dirA, on: "nope", nd: dirB, nn: "x", want: ErrNotFound},
		{name: "no-replace over a file", od: dirA, on: "f", nd: dirB, nn: "h", flags: RenameFlags{NoReplace: true}, want: ErrExist},
		{name: "no-replace to a new name", od: dirA, on: "f", nd: dirB, nn: "new", flags: RenameFlags{NoReplace: true},
			entries: []entry{{dirB, "new", ino(func(tr *tree) ondisk.Ino { return tr.f })}}},
		{name: "exchange a file and a directory", od: dirA, on: "f", nd: dirB, nn: "empty", flags: RenameFlags{Exchange: true},
			entries: []entry{{dirA, "f", ino(func(tr *tree) ondisk.Ino { return tr.empty })}, {dirB, "empty", ino(func(tr *tree) ondisk.Ino { return tr.f })},
				{dirEmpty, "..", ino(func(tr *tree) ondisk.Ino { return tr.a })}},
			nlinks: map[string]int16{"a": 4, "b": 3}},
		{name: "exchange with a missing name", od: dirA, on: "f", nd: dirB, nn: "nope", flags: RenameFlags{Exchange: true}, want: ErrNotFound},
		{name: "exchange a directory with its child", od: func(tr *tree) ondisk.Ino { return tr.root }, on: "a", nd: dirA, nn: "sub", flags: RenameFlags{Exchange: true}, want: ErrInvalid},
		{name: "both flags", od: dirA, on: "f", nd: dirB, nn: "h", flags: RenameFlags{Exchange: true, NoReplace: true}, want: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := build(t)
			err := tr.fs.Rename(tc.od(tr), tc.on, tc.nd(tr), tc.nn, tc.flags)
			if !is(err, tc.want) {
				t.Fatalf("Rename = %v, want %v", err, tc.want)
			}
			for _, e := range tc.entries {
				got, err := tr.fs.Lookup(e.dir(tr), e.name)
				if e.ino == nil {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("%q: %d, %v; want none", e.name, got, err)
					}
					continue
				}
				if err != nil || got != e.ino(tr) {
					t.Errorf("%q: %d, %v; want %d", e.name, got, err, e.ino(tr))
				}
			}
			for name, want := range tc.nlinks {
				d := map[string]ondisk.Ino{"a": tr.a, "b": tr.b}[name]
				if st, _ := tr.fs.Stat(d); st.Nlink != want {
					t.Errorf("nlink of %s %d, want %d", name, st.Nlink, want)
				}
			}
			checkFS(t, tr.fs)
		})
	}
}
