package dump

// restore -i: the interactive shell of sbin/restore/interactive.c over
// the dump's directories: ls, cd, pwd, add, delete, extract, what,
// verbose, help, quit.

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

const interactiveHelp = `Available commands are:
	ls [arg] - list directory
	cd arg - change directory
	pwd - print current directory
	add [arg] - add ` + "`arg'" + ` to list of files to be extracted
	delete [arg] - delete ` + "`arg'" + ` from list of files to be extracted
	extract - extract requested files
	setmodes - set modes of requested directories
	quit - immediately exit program
	what - list dump header information
	verbose - toggle verbose flag (useful with ` + "``ls''" + `)
	help or ` + "`?'" + ` - print this list
If no ` + "`arg'" + ` is supplied, the current directory is used
`

// shell is the state of one -i session.
type shell struct {
	r       *restorer
	t       *tree
	out     io.Writer
	cwd     string          // "" is the root
	marks   map[string]bool // added (true) or deleted (false) names
	verbose bool
	done    bool // the dump has been read by extract
}

func (r *restorer) interactive() error {
	s := &shell{r: r, t: walkTree(r.dirs, r.rd.InoDumped, r.warn), out: r.opts.List, marks: map[string]bool{}}
	if s.out == nil {
		s.out = io.Discard
	}
	in := r.opts.Commands
	if in == nil {
		return fmt.Errorf("restore: -i needs commands on standard input")
	}
	sc := bufio.NewScanner(in)
	for {
		fmt.Fprint(s.out, "restore > ")
		if !sc.Scan() {
			fmt.Fprintln(s.out)
			return sc.Err()
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		arg := ""
		if len(f) > 1 {
			arg = strings.Join(f[1:], " ")
		}
		quit, err := s.run(f[0], arg)
		if err != nil || quit {
			return err
		}
	}
}

// resolve turns a shell argument into a path of the tree.
func (s *shell) resolve(arg string) string {
	if arg == "" {
		return s.cwd
	}
	if strings.HasPrefix(arg, "/") {
		return canon(arg)
	}
	return canon(path.Join("/"+s.cwd, arg))
}

// chosen reports whether p is to be extracted: the nearest mark at or
// above it decides.
func (s *shell) chosen(p string) bool {
	for {
		if m, ok := s.marks[p]; ok {
			return m
		}
		if p == "" {
			return false
		}
		p = path.Dir(p)
		if p == "." {
			p = ""
		}
	}
}

func (s *shell) run(cmd, arg string) (bool, error) {
	switch cmd {
	case "?", "help", "h":
		fmt.Fprint(s.out, interactiveHelp)
	case "quit", "q", "xit", "x":
		return true, nil
	case "pwd":
		fmt.Fprintf(s.out, "/%s\n", s.cwd)
	case "cd":
		p := s.resolve(arg)
		i, ok := s.t.byPath[p]
		switch {
		case !ok:
			fmt.Fprintf(s.out, "%s: not found on tape\n", dotPath(p))
		case !s.t.order[i].dir:
			fmt.Fprintf(s.out, "%s: not a directory\n", dotPath(p))
		default:
			s.cwd = p
		}
	case "ls":
		s.ls(s.resolve(arg), arg != "")
	case "add", "delete":
		p := s.resolve(arg)
		if _, ok := s.t.byPath[p]; !ok {
			fmt.Fprintf(s.out, "%s: not on the tape\n", dotPath(p))
			break
		}
		s.marks[p] = cmd == "add"
		for m := range s.marks { // a mark below is overridden
			if p == "" && m != "" || strings.HasPrefix(m, p+"/") {
				delete(s.marks, m)
			}
		}
	case "what":
		v := &s.r.rd.Volume
		fmt.Fprintf(s.out, "Dump   date: %s\n", Ctime(time.Unix(v.Date, 0)))
		if v.Ddate == 0 {
			fmt.Fprintf(s.out, "Dumped from: the epoch\n")
		} else {
			fmt.Fprintf(s.out, "Dumped from: %s\n", Ctime(time.Unix(v.Ddate, 0)))
		}
		fmt.Fprintf(s.out, "Level %d dump of %s on %s:%s\nLabel: %s\n", v.Level, v.FilesysString(), v.HostString(), v.DevString(), v.LabelString())
	case "verbose", "v":
		s.verbose = !s.verbose
		if s.verbose {
			fmt.Fprintln(s.out, "verbose mode on")
		} else {
			fmt.Fprintln(s.out, "verbose mode off")
		}
	case "extract", "setmodes":
		if s.done {
			fmt.Fprintln(s.out, "the dump has been read to its end: run restore -i again to extract more")
			break
		}
		x := newExtraction(s.t)
		for _, it := range s.t.order {
			if s.chosen(it.path) {
				x.add(it)
			}
		}
		if cmd == "setmodes" {
			x.p.extract = map[uint32][]string{}
		}
		s.done = true
		if err := s.r.apply(x.p); err != nil {
			return true, err
		}
	default:
		fmt.Fprintf(s.out, "%s: unknown command; type ? for help\n", cmd)
	}
	return false, nil
}

// ls lists a directory (or names a file): directories end in '/', names
// to extract start with '*', and verbose mode shows inode numbers.
func (s *shell) ls(p string, named bool) {
	i, ok := s.t.byPath[p]
	if !ok {
		fmt.Fprintf(s.out, "%s: not on the tape\n", dotPath(p))
		return
	}
	it := s.t.order[i]
	entry := func(it treeItem, name string) string {
		e := name
		if it.dir {
			e += "/"
		}
		if s.chosen(it.path) {
			e = "*" + e
		}
		if s.verbose {
			e = fmt.Sprintf("%6d ", it.ino) + e
		}
		return e
	}
	if !it.dir {
		fmt.Fprintln(s.out, entry(it, path.Base(p)))
		return
	}
	if named {
		fmt.Fprintf(s.out, "%s:\n", dotPath(p))
	}
	var names []string
	for _, e := range s.t.dirs[it.ino].Entries {
		cp := path.Join(p, e.Name)
		if j, ok := s.t.byPath[cp]; ok {
			names = append(names, entry(s.t.order[j], e.Name))
		}
	}
	sort.Strings(names)
	printColumns(s.out, names)
}

// printColumns prints names in columns across an 80-column line, as
// restore's ls does.
func printColumns(w io.Writer, names []string) {
	width := 1
	for _, n := range names {
		width = max(width, len(n)+2)
	}
	cols := max(1, 80/width)
	rows := (len(names) + cols - 1) / cols
	for r := range rows {
		var b strings.Builder
		for c := range cols {
			i := c*rows + r
			if i >= len(names) {
				break
			}
			if c < cols-1 && i+rows < len(names) {
				fmt.Fprintf(&b, "%-*s", width, names[i])
			} else {
				b.WriteString(names[i])
			}
		}
		fmt.Fprintln(w, b.String())
	}
}
