package dump

// dumpdates: the file of past dumps (FreeBSD's /etc/dumpdates), one line
// per filesystem and level: the name left-justified in 53 columns, the
// level, and the date as ctime(3) prints it in local time.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CtimeLayout is ctime(3)'s format.
const CtimeLayout = "Mon Jan _2 15:04:05 2006"

// DumpFmtLen is DUMPFMTLEN, the width of the name in a dumpdates line.
const DumpFmtLen = 53

const dumpFmtLen = DumpFmtLen

// DumpDate is one line of dumpdates.
type DumpDate struct {
	Name  string
	Level int
	Date  time.Time
}

// Ctime formats t as ctime(3) does in local time, without the newline.
func Ctime(t time.Time) string { return t.Local().Format(CtimeLayout) }

// Unctime parses a date in ctime(3)'s format (dump -T and dumpdates) in
// local time.
func Unctime(s string) (time.Time, error) {
	s = strings.TrimRight(s, "\n")
	t, err := time.ParseInLocation(CtimeLayout, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: want ctime's format, as in %q", s, Ctime(time.Unix(1e9, 0)))
	}
	return t, nil
}

// ErrDumpdates: a dumpdates file that cannot be read or written.
var ErrDumpdates = errors.New("dump: dumpdates")

// ParseDumpDates reads dumpdates lines; a line it cannot parse is kept out
// and reported through warn with its number (dump's "Unknown intermediate
// format").
func ParseDumpDates(r io.Reader, warn func(line int, text string)) ([]DumpDate, error) {
	var out []DumpDate
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			if warn != nil {
				warn(n, sc.Text())
			}
			continue
		}
		lvl, err := strconv.Atoi(f[1])
		if err != nil {
			if warn != nil {
				warn(n, sc.Text())
			}
			continue
		}
		// The date is the rest of the line after name and level.
		rest := strings.TrimSpace(sc.Text())
		rest = strings.TrimSpace(rest[len(f[0]):])
		rest = strings.TrimSpace(rest[len(f[1]):])
		t, err := Unctime(rest)
		if err != nil {
			if warn != nil {
				warn(n, sc.Text())
			}
			continue
		}
		out = append(out, DumpDate{Name: f[0], Level: lvl, Date: t})
	}
	return out, sc.Err()
}

// FormatDumpDate is one dumpdates line with its newline.
func FormatDumpDate(d DumpDate) string {
	return fmt.Sprintf("%-*s %d %s\n", dumpFmtLen, d.Name, d.Level, Ctime(d.Date))
}

// LastDump is getdumptime: among the dumps of name at a level below
// level, the latest; ok false when there is none (a dump from the epoch).
func LastDump(dates []DumpDate, name string, level int) (d DumpDate, ok bool) {
	for _, x := range dates {
		if x.Name != name || x.Level >= level {
			continue
		}
		if !ok || x.Date.After(d.Date) {
			d, ok = x, true
		}
	}
	return d, ok
}

// ReadDumpDates reads the dumpdates file at path under a shared lock. A
// missing file is created empty (dump's "no file ..., making an empty
// one"), reported through note.
func ReadDumpDates(path string, note func(string)) ([]DumpDate, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		note(fmt.Sprintf("WARNING: no file `%s', making an empty one\n", path))
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o664); err != nil {
			return nil, fmt.Errorf("%w: cannot create %s: %w", ErrDumpdates, path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("%w: cannot read %s: %w", ErrDumpdates, path, err)
	}
	defer f.Close()
	_ = unix.Flock(int(f.Fd()), unix.LOCK_SH)
	return ParseDumpDates(f, func(n int, _ string) {
		note(fmt.Sprintf("Unknown intermediate format in %s, line %d\n", path, n))
	})
}

// UpdateDumpDates is putdumptime: under an exclusive lock, set the entry
// of name at level to date (replacing the one there or adding one at the
// end) and rewrite the file.
func UpdateDumpDates(path, name string, level int, date time.Time) error {
	if len(name) > dumpFmtLen {
		return fmt.Errorf("%w: name '%s' exceeds DUMPFMTLEN (%d) bytes", ErrDumpdates, name, dumpFmtLen)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: cannot rewrite %s: %w", ErrDumpdates, path, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("%w: lock %s: %w", ErrDumpdates, path, err)
	}
	dates, err := ParseDumpDates(f, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDumpdates, path, err)
	}
	found := false
	for i := range dates {
		if dates[i].Name == name && dates[i].Level == level {
			dates[i].Date, found = date, true
			break
		}
	}
	if !found {
		dates = append(dates, DumpDate{Name: name, Level: level, Date: date})
	}
	var b strings.Builder
	for _, d := range dates {
		b.WriteString(FormatDumpDate(d))
	}
	if _, err := f.WriteAt([]byte(b.String()), 0); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDumpdates, path, err)
	}
	if err := f.Truncate(int64(b.Len())); err != nil {
		return fmt.Errorf("%w: ftruncate (%s): %w", ErrDumpdates, path, err)
	}
	return f.Sync()
}

// FstabEntry is the part of an fstab line dump -W and -w use.
type FstabEntry struct {
	Spec, File string
	Freq       int // the fifth field: days between dumps
}

// ParseFstab returns the ufs and ufs2 lines of an fstab.
func ParseFstab(r io.Reader) []FstabEntry {
	var out []FstabEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[2] != "ufs" && f[2] != "ufs2") {
			continue
		}
		e := FstabEntry{Spec: f[0], File: f[1]}
		if len(f) >= 5 {
			e.Freq, _ = strconv.Atoi(f[4])
		}
		out = append(out, e)
	}
	return out
}

func fstabSearch(tab []FstabEntry, key string) *FstabEntry {
	for i := range tab {
		e := &tab[i]
		if e.File == key || e.Spec == key {
			return e
		}
		if !strings.HasPrefix(key, "/") && (strings.TrimPrefix(e.Spec, "/") == key || strings.TrimPrefix(e.File, "/") == key) {
			return e
		}
	}
	return nil
}

// WhatToDump is lastdump: the report of dump -W (every filesystem in
// dumpdates, the ones due marked '>') or -w (only the ones due).
func WhatToDump(w io.Writer, dates []DumpDate, tab []FstabEntry, onlyDue bool, now time.Time) {
	ds := append([]DumpDate(nil), dates...)
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Name != ds[j].Name {
			return ds[i].Name < ds[j].Name
		}
		return ds[i].Date.After(ds[j].Date)
	})
	if onlyDue {
		fmt.Fprintf(w, "Dump these file systems:\n")
	} else {
		fmt.Fprintf(w, "Last dump(s) done (Dump '>' file systems):\n")
	}
	last := "??"
	for _, d := range ds {
		if d.Name == last {
			continue
		}
		last = d.Name
		dt := fstabSearch(tab, d.Name)
		due := dt != nil && dt.Freq != 0
		if due {
			lt := d.Date.Local()
			midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.Local)
			due = now.After(midnight.Add(time.Duration(dt.Freq) * 24 * time.Hour))
		}
		if onlyDue && !due {
			continue
		}
		mark := ' '
		if due && !onlyDue {
			mark = '>'
		}
		file := ""
		if dt != nil {
			file = dt.File
		}
		fmt.Fprintf(w, "%c %8s\t(%6s) Last dump: Level %d, Date %s\n", mark, d.Name, file, d.Level, Ctime(d.Date)[:16])
	}
}
