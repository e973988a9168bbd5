package blockdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// A partition as this package needs it: where it is and how big.
type partEntry struct {
	index int // 1-based, as in PATH@N and in the kernel's sdaN
	start int64
	size  int64
	// bad says why the entry cannot be used ("" if it can).
	bad string
	// protective marks the MBR entry that covers a GPT disk.
	protective bool
}

// A partition table read from a device.
type partTable struct {
	kind    string // "GPT" or "MBR"
	entries []partEntry
}

// MBR partition types that are containers, not partitions.
const (
	mbrExtendedCHS   = 0x05
	mbrExtendedLBA   = 0x0f
	mbrLinuxExtended = 0x85
	mbrProtectiveGPT = 0xee
)

// GPT header fields read here before go-diskfs sees the header, because it
// sizes an allocation with them unchecked.
const (
	gptSignature        = "EFI PART"
	gptOffEntriesLBA    = 72
	gptOffEntryCount    = 80
	gptOffEntrySize     = 84
	gptHeaderBytes      = 92
	gptMaxEntryArray    = 4 << 20 // bytes; the usual array is 16 KiB
	gptMinEntrySize     = 128
	gptMaxEntrySize     = 4096
	mbrSectorSize       = 512
	partitionListLength = 8 // how many partition numbers a message lists
)

// selectPartition narrows d to partition n of the table at the start of d.
// path is the whole file or device, for messages.
func (d *fileDevice) selectPartition(path string, n int) error {
	sectorSizes := []int{512, 4096}
	if d.block {
		ss, err := logicalSectorSize(d.f)
		if err != nil {
			return fmt.Errorf("%s: cannot get the device's sector size: %w", d.name, err)
		}
		sectorSizes = []int{ss}
	}
	t, err := readTable(d.f, d.size, sectorSizes)
	if err != nil {
		return causef(ErrNoPartition, err, "%s: cannot read the partition table of %s: %v", d.name, path, err)
	}
	if t == nil {
		return errorf(ErrNoPartition, "%s: %s has no GPT or MBR partition table (open %s without @%d to use it whole)", d.name, path, path, n)
	}
	var e *partEntry
	for i := range t.entries {
		if t.entries[i].index == n {
			e = &t.entries[i]
		}
	}
	if e == nil {
		return errorf(ErrNoPartition, "%s: partition %d does not exist (%s)", d.name, n, t.describe(path, n))
	}
	if e.bad != "" {
		return errorf(ErrNoPartition, "%s: partition %d %s", d.name, n, e.bad)
	}
	if e.start > d.size || e.size > d.size-e.start {
		return errorf(ErrOutOfRange, "%s: partition %d (bytes %d to %d) runs past the end of %s (%d bytes); the table is damaged or the image was truncated",
			d.name, n, e.start, uint64(e.start)+uint64(e.size), path, d.size)
	}
	d.base, d.size = e.start, e.size
	return nil
}

// describe says which partitions exist, for a message about a missing one.
func (t *partTable) describe(path string, asked int) string {
	var usable []int
	for _, e := range t.entries {
		if e.bad == "" {
			usable = append(usable, e.index)
		}
	}
	sort.Ints(usable)
	var s string
	switch k := len(usable); {
	case k == 0:
		s = fmt.Sprintf("the %s table has no usable partitions; add one with a partitioning tool or open %s whole", t.kind, path)
	case k == 1:
		s = fmt.Sprintf("the %s table has 1; use %s@%d", t.kind, path, usable[0])
	case usable[0] == 1 && usable[k-1] == k:
		s = fmt.Sprintf("the %s table has %d; use %s@1..@%d", t.kind, k, path, k)
	default:
		names := make([]string, 0, partitionListLength)
		for i, n := range usable {
			if i == partitionListLength {
				names = append(names, "...")
				break
			}
			names = append(names, strconv.Itoa(n))
		}
		s = fmt.Sprintf("the %s table has %s; use %s@N with one of them", t.kind, strings.Join(names, ", "), path)
	}
	if t.kind == "MBR" && asked > 4 {
		s += "; logical partitions inside an extended partition are not supported"
	}
	return s
}

// readTable reads the GPT or, failing that, the MBR at the start of a device
// of size bytes. It returns nil and no error when there is neither.
func readTable(f *os.File, size int64, sectorSizes []int) (*partTable, error) {
	for _, ss := range sectorSizes {
		if err := checkGPTHeaders(f, size, ss); err != nil {
			return nil, err
		}
		t, err := readGPT(f, ss)
		if err == nil {
			return t, nil
		}
	}
	t, err := readMBR(f, sectorSizes[0])
	if err != nil {
		return nil, nil //nolint:nilerr // no readable MBR means no table
	}
	for _, e := range t.entries {
		if e.protective {
			return nil, errors.New("it has a protective MBR but no valid GPT header; repair the GPT (e.g. with gdisk) or open the image whole")
		}
	}
	return t, nil
}

// checkGPTHeaders rejects a GPT header, primary or backup, that would make
// go-diskfs allocate without bound or that it cannot parse. A header without
// the signature is left to go-diskfs to reject.
func checkGPTHeaders(f *os.File, size int64, ss int) error {
	offs := []int64{int64(ss)}
	if last := size/int64(ss) - 1; last > 1 {
		offs = append(offs, last*int64(ss))
	}
	for _, off := range offs {
		b := make([]byte, gptHeaderBytes)
		if n, _ := f.ReadAt(b, off); n < len(b) || string(b[:8]) != gptSignature {
			continue
		}
		count := binary.LittleEndian.Uint32(b[gptOffEntryCount:])
		esize := binary.LittleEndian.Uint32(b[gptOffEntrySize:])
		first := binary.LittleEndian.Uint64(b[gptOffEntriesLBA:])
		switch {
		case esize < gptMinEntrySize || esize > gptMaxEntrySize || esize&(esize-1) != 0:
			return fmt.Errorf("the GPT header at byte %d has entry size %d (want a power of two from %d to %d); the table is damaged", off, esize, gptMinEntrySize, gptMaxEntrySize)
		case esize != gpt.PartitionEntrySize:
			return fmt.Errorf("the GPT header at byte %d has %d-byte entries; only %d-byte entries are supported", off, esize, gpt.PartitionEntrySize)
		case uint64(count)*uint64(esize) > gptMaxEntryArray:
			return fmt.Errorf("the GPT header at byte %d has %d entries of %d bytes (more than %d bytes); the table is damaged", off, count, esize, gptMaxEntryArray)
		case first >= uint64(size)/uint64(ss):
			return fmt.Errorf("the GPT header at byte %d puts its entries at sector %d, past the end of the device; the table is damaged", off, first)
		}
	}
	return nil
}

// readGPT reads a GPT with ss-byte sectors.
func readGPT(f *os.File, ss int) (t *partTable, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("the GPT reader failed on this table: %v", r)
		}
	}()
	g, err := gpt.Read(f, ss, ss)
	if err != nil {
		return nil, err
	}
	t = &partTable{kind: "GPT"}
	for _, p := range g.Partitions {
		e := partEntry{index: p.Index}
		switch {
		case p.Type == gpt.Unused:
			continue
		case p.End < p.Start || p.Start == 0:
			e.bad = fmt.Sprintf("is damaged in the GPT (first sector %d, last %d)", p.Start, p.End)
		case p.End >= uint64(math.MaxInt64)/uint64(ss):
			e.bad = fmt.Sprintf("is damaged in the GPT (last sector %d is absurd)", p.End)
		default:
			e.start = int64(p.Start) * int64(ss)
			e.size = int64(p.End-p.Start+1) * int64(ss)
		}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// readMBR reads the four primary entries of an MBR. go-diskfs assumes
// 512-byte sectors for the LBAs in it; a disk with larger logical sectors
// counts them in its own sectors, so the conversion is done here with ss.
func readMBR(f *os.File, ss int) (t *partTable, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("the MBR reader failed on this table: %v", r)
		}
	}()
	m, err := mbr.Read(f, mbrSectorSize, mbrSectorSize)
	if err != nil {
		return nil, err
	}
	t = &partTable{kind: "MBR"}
	for _, p := range m.Partitions {
		if p.Type == mbr.Empty || p.Size == 0 {
			continue
		}
		e := partEntry{index: p.Index, start: int64(p.Start) * int64(ss), size: int64(p.Size) * int64(ss)}
		switch p.Type {
		case mbrExtendedCHS, mbrExtendedLBA, mbrLinuxExtended:
			e.bad = "is an MBR extended partition (a container for logical partitions, which are not supported), not a filesystem"
		case mbrProtectiveGPT:
			e.protective = true
			e.bad = "is the protective entry of a GPT disk whose GPT could not be read"
		}
		t.entries = append(t.entries, e)
	}
	return t, nil
}
