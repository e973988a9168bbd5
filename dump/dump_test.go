package dump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestHeaderLayout checks s_spcl's offsets against dumprestore.h and the
// checksum rule: the 256 words of a sealed header sum to CHECKSUM.
func TestHeaderLayout(t *testing.T) {
	h := Header{Type: TSInode, Magic: UFS2Magic, Inumber: 0x01020304, Mode: 0o100644, Size: 0x1122334455667788,
		Atime: -5, Atimensec: 7, Mtime: 1 << 40, Mtimensec: 9, Birthtime: 3, Birthtimensec: 4,
		Extsize: 512, FileFlags: 0x20000, UID: 1001, GID: 1002, Count: 3, Level: 2, Flags: 0,
		Date: 1700000000, Ddate: 1600000000, Tapea: 77, Firstrec: 5, Rdev: 0x0105}
	h.Addr[0], h.Addr[2] = 1, 1
	setCstr(h.Label[:], "none")
	setCstr(h.Host[:], "host")
	var b [TPBsize]byte
	h.Encode(b[:])
	Seal(b[:])
	for _, f := range []struct {
		name string
		off  int
		want uint64
		size int
	}{
		{"c_type", 0, TSInode, 4}, {"c_inumber", 20, 0x01020304, 4}, {"c_mode", 32, 0o100644, 2},
		{"c_size", 40, 0x1122334455667788, 8}, {"c_atimensec", 52, 7, 4}, {"c_mtimensec", 60, 9, 4},
		{"c_rdev", 72, 0x105, 4}, {"c_birthtimensec", 76, 4, 4}, {"c_birthtime", 80, 3, 8},
		{"c_mtime", 96, 1 << 40, 8}, {"c_extsize", 104, 512, 4}, {"c_file_flags", 132, 0x20000, 4},
		{"c_uid", 144, 1001, 4}, {"c_gid", 148, 1002, 4}, {"c_count", 160, 3, 4}, {"c_addr[2]", 166, 1, 1},
		{"c_level", 692, 2, 4}, {"c_date", 896, 1700000000, 8}, {"c_ddate", 904, 1600000000, 8},
		{"c_tapea", 912, 77, 8}, {"c_firstrec", 920, 5, 8},
	} {
		var got uint64
		switch f.size {
		case 1:
			got = uint64(b[f.off])
		case 2:
			got = uint64(le.Uint16(b[f.off:]))
		case 4:
			got = uint64(le.Uint32(b[f.off:]))
		case 8:
			got = le.Uint64(b[f.off:])
		}
		if got != f.want {
			t.Errorf("%s at %d: %#x, want %#x", f.name, f.off, got, f.want)
		}
	}
	if cstr(b[676:692]) != "none" || cstr(b[824:888]) != "host" {
		t.Errorf("c_label %q, c_host %q", cstr(b[676:692]), cstr(b[824:888]))
	}
	if err := CheckRecord(b[:]); err != nil {
		t.Errorf("sealed header: %v", err)
	}
	var sum int32
	for i := 0; i < TPBsize; i += 4 {
		sum += int32(le.Uint32(b[i:]))
	}
	if sum != Checksum {
		t.Errorf("words sum to %d, want %d", sum, Checksum)
	}
	var back Header
	back.Decode(b[:])
	back.Checksum = 0
	if back != h {
		t.Errorf("decode(encode(h)) = %+v, want %+v", back, h)
	}
	b[500] ^= 1
	if err := CheckRecord(b[:]); !errors.Is(err, ErrChecksum) {
		t.Errorf("a changed header: %v, want ErrChecksum", err)
	}
}

var (
	seedOnce sync.Once
	seedDump []byte
	seedErr  error
)

// smallDump is the dump of a small filesystem made in memory: a few
// directories, files with holes and extended attributes, a symlink.
func smallDump(t testing.TB) []byte {
	t.Helper()
	seedOnce.Do(func() {
		dev := blockdev.NewMem(16 << 20)
		p := newfs.DefaultParams()
		p.Size = 16 << 20
		if _, seedErr = newfs.Format(context.Background(), dev, p); seedErr != nil {
			return
		}
		var fsys *ufs.FS
		if fsys, seedErr = ufs.Open(dev, ufs.Options{}); seedErr != nil {
			return
		}
		root := ondisk.Ino(ondisk.RootIno)
		d, err := fsys.Mkdir(root, "dir", 0o755, 1, 2)
		seedErr = err
		for i, name := range []string{"a", "b", "c"} {
			if seedErr != nil {
				break
			}
			var ino ondisk.Ino
			if ino, seedErr = fsys.Create(d, name, 0o644, 0, 0); seedErr == nil {
				_, seedErr = fsys.WriteAt(ino, bytes.Repeat([]byte(name), 3000*(i+1)), int64(i)*100000)
			}
			if seedErr == nil && i == 1 {
				seedErr = fsys.SetXattr(ino, ondisk.ExtattrNamespaceUser, "k", []byte("v"), ufs.XattrFlags{})
			}
		}
		if seedErr == nil {
			_, seedErr = fsys.Symlink(root, "link", "dir/a", 0, 0)
		}
		if cerr := fsys.Close(); seedErr == nil {
			seedErr = cerr
		}
		if seedErr != nil {
			return
		}
		var out bytes.Buffer
		_, seedErr = Dump(context.Background(), dev, &out, Options{Date: time.Now().Unix(), HonorLevel: 1})
		seedDump = out.Bytes()
	})
	if seedErr != nil {
		t.Fatal(seedErr)
	}
	return seedDump
}

// readAll reads a whole dump as restore -t and a restore -r would, with
// nothing written: every file's data and attributes.
func readAll(b []byte) error {
	rd, err := NewReader(bytes.NewReader(b), 0)
	if err != nil {
		return err
	}
	defer rd.Close()
	_, err = Restore(context.Background(), rd, RestoreOptions{Mode: ModeRestore, NoWrite: true, Dir: os.TempDir()})
	return err
}

// TestReaderDamage truncates the small dump at every record boundary and
// in the middle of records, and flips a byte in every record: restore
// either reads it or fails with ErrFormat naming a record; it never
// panics.
func TestReaderDamage(t *testing.T) {
	b := smallDump(t)
	if err := readAll(b); err != nil {
		t.Fatalf("the undamaged dump: %v", err)
	}
	// the dump is complete from its first TS_END header on
	end := 0
	for end < len(b) && (CheckRecord(b[end:end+TPBsize]) != nil || le.Uint32(b[end:]) != TSEnd) {
		end += TPBsize
	}
	for n := 0; n < end+TPBsize; n += TPBsize / 2 {
		err := readAll(b[:n])
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "record") && n > 0 {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	for r := 0; r < len(b)/TPBsize; r++ {
		c := bytes.Clone(b)
		c[r*TPBsize+r%TPBsize] ^= 0x5a
		if err := readAll(c); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("record %d changed: %v", r, err)
		}
	}
}

// FuzzReader feeds restore arbitrary dumps.
func FuzzReader(f *testing.F) {
	b := smallDump(f)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		err := readAll(data)
		if err != nil && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrHost) {
			t.Fatalf("%v", err)
		}
	})
}

// TestDumpDatesFormat: lines as FreeBSD's dump writes them, read back.
func TestDumpDatesFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dumpdates")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	for i, lv := range []int{0, 1, 0} {
		if err := UpdateDumpDates(p, "/dev/ada0p2", lv, t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	want := "/dev/ada0p2" + strings.Repeat(" ", 53-11) + " 0 Wed Mar  4 07:06:07 2026\n" +
		"/dev/ada0p2" + strings.Repeat(" ", 53-11) + " 1 Wed Mar  4 06:06:07 2026\n"
	if string(b) != want {
		t.Errorf("dumpdates:\n%q\nwant\n%q", b, want)
	}
	dates, err := ParseDumpDates(bytes.NewReader(b), nil)
	if err != nil || len(dates) != 2 {
		t.Fatal(dates, err)
	}
	if d, ok := LastDump(dates, "/dev/ada0p2", 2); !ok || d.Level != 0 || !d.Date.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("last dump below level 2: %+v %v", d, ok)
	}
	if _, ok := LastDump(dates, "/dev/ada0p2", 0); ok {
		t.Error("a level 0 dump found a dump below it")
	}
}
