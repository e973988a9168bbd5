package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

const (
	imageSize = 16 << 20
	// The two partitions every test image has, in sectors of the table's
	// sector size: 1 MiB..5 MiB and 5 MiB..13 MiB.
	part1Start, part1Len = 1 << 20, 4 << 20
	part2Start, part2Len = 5 << 20, 8 << 20
)

// makeImage writes a sparse image of imageSize bytes holding a partition
// table of the given kind ("gpt", "gpt4k" or "mbr") with two partitions.
func makeImage(t *testing.T, kind string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), kind+".img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(imageSize); err != nil {
		t.Fatal(err)
	}
	writeTable(t, f, kind, imageSize)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeTable(t *testing.T, f *os.File, kind string, size int64) {
	t.Helper()
	switch kind {
	case "gpt", "gpt4k":
		ss := uint64(512)
		if kind == "gpt4k" {
			ss = 4096
		}
		table := &gpt.Table{
			LogicalSectorSize:  int(ss),
			PhysicalSectorSize: int(ss),
			ProtectiveMBR:      true,
			Partitions: []*gpt.Partition{
				{Index: 1, Start: part1Start / ss, End: (part1Start+part1Len)/ss - 1, Type: gpt.FreeBSDUFS, Name: "one"},
				{Index: 2, Start: part2Start / ss, End: (part2Start+part2Len)/ss - 1, Type: gpt.FreeBSDUFS, Name: "two"},
			},
		}
		if err := table.Write(f, size); err != nil {
			t.Fatalf("writing GPT: %v", err)
		}
	case "mbr":
		table := &mbr.Table{
			LogicalSectorSize:  512,
			PhysicalSectorSize: 512,
			Partitions: []*mbr.Partition{
				{Type: mbr.Linux, Start: part1Start / 512, Size: part1Len / 512},
				{Type: mbr.Linux, Start: part2Start / 512, Size: part2Len / 512},
			},
		}
		if err := table.Write(f, size); err != nil {
			t.Fatalf("writing MBR: %v", err)
		}
	default:
		t.Fatalf("unknown table kind %q", kind)
	}
}

func TestPartitionWindow(t *testing.T) {
	for _, kind := range []string{"gpt", "gpt4k", "mbr"} {
		t.Run(kind, func(t *testing.T) {
			path := makeImage(t, kind)
			tests := []struct {
				part        int
				start, size int64
			}{
				{1, part1Start, part1Len},
				{2, part2Start, part2Len},
			}
			for _, tt := range tests {
				target := path + "@" + string(rune('0'+tt.part))
				d, err := Open(target, Options{})
				if err != nil {
					t.Fatalf("Open(%s): %v", target, err)
				}
				if d.Size() != tt.size || d.Name() != target {
					t.Errorf("%s: Size %d Name %q, want %d %q", target, d.Size(), d.Name(), tt.size, target)
				}
				mark := []byte("partition " + string(rune('0'+tt.part)))
				if _, err := d.WriteAt(mark, 0); err != nil {
					t.Fatalf("%s: WriteAt(0): %v", target, err)
				}
				checkReadWrite(t, d, bytes.Repeat([]byte{byte(tt.part)}, 512))
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				// The bytes landed at the partition's start in the file,
				// and the write at the partition's last bytes did not
				// spill into what follows.
				whole := readFile(t, path)
				if got := whole[tt.start : tt.start+int64(len(mark))]; !bytes.Equal(got, mark) {
					t.Errorf("%s: file at %d holds %q, want %q", target, tt.start, got, mark)
				}
				if got := whole[tt.start+8192]; got != byte(tt.part) {
					t.Errorf("%s: file at %d holds %d, want %d", target, tt.start+8192, got, tt.part)
				}
				// Its last bytes are the partition's last bytes, and the
				// byte after them was not written.
				end := tt.start + tt.size
				if got := whole[end-100 : end]; !bytes.Equal(got, bytes.Repeat([]byte{lastByte}, 100)) {
					t.Errorf("%s: the partition's last bytes in the file are %x", target, got)
				}
				if end < imageSize && whole[end] == lastByte {
					t.Errorf("%s: the byte after the partition was written", target)
				}
			}
			// Partition 2 starts right after partition 1 and keeps its mark.
			if whole := readFile(t, path); !strings.HasPrefix(string(whole[part2Start:]), "partition 2") {
				t.Errorf("partition 2's first bytes are %q", whole[part2Start:][:11])
			}

			for _, bad := range []string{"@3", "@4", "@128", "@5"} {
				_, err := Open(path+bad, Options{})
				if !errors.Is(err, ErrNoPartition) {
					t.Errorf("Open(%s) = %v, want ErrNoPartition", bad, err)
					continue
				}
				checkMessage(t, err)
				if !strings.Contains(err.Error(), path+"@1..@2") {
					t.Errorf("Open(%s): message %q does not suggest @1..@2", bad, err)
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPartitionLockAndReadOnly(t *testing.T) {
	path := makeImage(t, "gpt")
	d, err := Open(path+"@1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The lock is on the image: another partition of it is busy too.
	if _, err := Open(path+"@2", Options{}); !errors.Is(err, ErrBusy) {
		t.Errorf("second writable partition of a locked image: %v, want ErrBusy", err)
	}
	d.Close()
	ro, err := Open(path+"@2", Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write to read-only partition: %v", err)
	}
}

// TestDamagedTables checks that damaged tables give ErrNoPartition or
// ErrOutOfRange, not a hang or a panic in the table reader.
func TestDamagedTables(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		damage func(t *testing.T, f *os.File)
		part   int
		err    error
	}{
		{
			name: "GPT entry size zero with valid CRCs",
			kind: "gpt",
			damage: func(t *testing.T, f *os.File) {
				patchGPTHeader(t, f, 512, func(h []byte) { binary.LittleEndian.PutUint32(h[84:], 0) })
				patchGPTHeader(t, f, imageSize-512, func(h []byte) { binary.LittleEndian.PutUint32(h[84:], 0) })
			},
			part: 1, err: ErrNoPartition,
		},
		{
			name: "GPT with a huge entry array",
			kind: "gpt",
			damage: func(t *testing.T, f *os.File) {
				patchGPTHeader(t, f, 512, func(h []byte) { binary.LittleEndian.PutUint32(h[80:], 1<<31) })
			},
			part: 1, err: ErrNoPartition,
		},
		{
			name: "both GPT headers broken, protective MBR left",
			kind: "gpt",
			damage: func(t *testing.T, f *os.File) {
				f.WriteAt([]byte("XXXXXXXX"), 512)
				f.WriteAt([]byte("XXXXXXXX"), imageSize-512)
			},
			part: 1, err: ErrNoPartition,
		},
		{
			name: "primary GPT broken, backup used",
			kind: "gpt",
			damage: func(t *testing.T, f *os.File) {
				f.WriteAt([]byte("XXXXXXXX"), 512)
			},
			part: 2, err: nil,
		},
		{
			name: "MBR partition past the end of the image",
			kind: "mbr",
			damage: func(t *testing.T, f *os.File) {
				// Entry 2's size field: 1 GiB of sectors.
				b := binary.LittleEndian.AppendUint32(nil, 1<<21)
				f.WriteAt(b, 446+16+12)
			},
			part: 2, err: ErrOutOfRange,
		},
		{
			name: "MBR extended partition",
			kind: "mbr",
			damage: func(t *testing.T, f *os.File) {
				f.WriteAt([]byte{mbrExtendedLBA}, 446+16+4)
			},
			part: 2, err: ErrNoPartition,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := makeImage(t, tt.kind)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, f)
			f.Close()
			target := path + "@" + string(rune('0'+tt.part))
			d, err := Open(target, Options{ReadOnly: true})
			if !errors.Is(err, tt.err) {
				t.Fatalf("Open(%s) = %v, want %v", target, err, tt.err)
			}
			if err != nil {
				checkMessage(t, err)
				t.Logf("message: %v", err)
				return
			}
			d.Close()
		})
	}
}

// patchGPTHeader edits the GPT header at off and fixes its CRC, so only the
// edited field is wrong.
func patchGPTHeader(t *testing.T, f *os.File, off int64, edit func(h []byte)) {
	t.Helper()
	h := make([]byte, 92)
	if _, err := f.ReadAt(h, off); err != nil {
		t.Fatal(err)
	}
	if string(h[:8]) != "EFI PART" {
		t.Fatalf("no GPT header at %d", off)
	}
	edit(h)
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	if _, err := f.WriteAt(h, off); err != nil {
		t.Fatal(err)
	}
}
