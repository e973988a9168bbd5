package main

// Help, usage errors and the version: the one place that turns the command
// definitions into text. --help, the man pages (man.go) and the shell
// completions (completion.go) all read the same cli.Command values and the
// manDoc each command registers with withDoc, so that they cannot disagree.

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// exitUsage is sysexits(3)'s EX_USAGE, what FreeBSD's tools exit with from
// usage(): a bad command line, before anything is opened.
const exitUsage = 64

// version is the program's version, set at build time with
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/ufs2
//
// Left empty, appVersion takes it from the build information.
var version = ""

// appVersion is version, else the module version or the VCS revision the
// Go toolchain recorded in the binary, else "devel".
func appVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, modified := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// example is one entry of a command's EXAMPLES.
type example struct {
	Cmd  string // the command line, as typed
	What string // what it does, one or two sentences
}

// manDoc is what a command's man page and --help say besides the flags
// and the description: examples, exit status, related pages.
type manDoc struct {
	Examples []example
	Exit     string   // the EXIT STATUS section
	SeeAlso  []string // pages besides ufs2(8), as "ufs2-fsck(8)" or "mount(8)"
}

// docs holds each command's manDoc by name (withDoc).
var docs = map[string]manDoc{}

// withDoc records d as the manual text of c and returns c.
func withDoc(c *cli.Command, d manDoc) *cli.Command {
	docs[c.Name] = d
	return c
}

// exitStd is the EXIT STATUS of a command with no statuses of its own.
const exitStd = "0 on success, 1 when the command failed (the message says why), " +
	"64 for a bad command line."

// appDoc is the manual text of ufs2 itself.
var appDoc = manDoc{
	Examples: []example{
		{"ufs2 demo", "Format a sparse 1 GiB image in a temporary directory, mount it, write files through the mount, unmount and check it."},
		{"ufs2 newfs -s 1g disk.img && ufs2 mount disk.img /mnt", "Make a new 1 GiB filesystem in disk.img and mount it on /mnt."},
		{"ufs2 fsck -p disk.img", "Repair what a crash left behind, as fsck_ffs -p does at boot."},
		{"ufs2 put disk.img ./etc /etc && ufs2 ls -l disk.img /etc", "Copy a host tree into an unmounted image and list it."},
	},
	Exit: "Each command's page gives its statuses. Common to all: 0 on success, " +
		"64 for a bad command line (no command, an unknown command or option, " +
		"wrong operands), 1 for most failures.",
}

// flagDoc is one flag as help and man pages show it.
type flagDoc struct {
	names []string // "-b", "--from", in the definition's order
	arg   string   // the value's placeholder, "" for a flag that takes none
	usage string
	deflt string // "" when there is nothing worth saying
}

// isSwitch reports whether f takes no value: a BoolFlag, or a generic flag
// whose value is a boolean switch.
func isSwitch(f cli.Flag) bool {
	switch f := f.(type) {
	case *cli.BoolFlag:
		return true
	case *cli.GenericFlag:
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return ok && b.IsBoolFlag()
	}
	return false
}

func describeFlag(f cli.Flag) flagDoc {
	var d flagDoc
	for _, n := range f.Names() {
		if len(n) == 1 {
			d.names = append(d.names, "-"+n)
		} else {
			d.names = append(d.names, "--"+n)
		}
	}
	usage := ""
	if u, ok := f.(cli.DocGenerationFlag); ok {
		usage = u.GetUsage()
	}
	placeholder, usage := unquoteUsage(usage)
	d.usage = usage
	if isSwitch(f) {
		return d
	}
	d.arg = placeholder
	if d.arg == "" {
		d.arg = "VALUE"
	}
	if u, ok := f.(cli.DocGenerationFlag); ok {
		switch v := u.GetDefaultText(); v {
		case "", "0", `""`, "[]":
		default:
			d.deflt = v
		}
	}
	return d
}

// unquoteUsage takes the first `word` of a flag's usage as the
// placeholder of its value (urfave/cli's convention) and returns the usage
// without the backquotes.
func unquoteUsage(usage string) (placeholder, text string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	placeholder = usage[i+1 : i+1+j]
	return placeholder, usage[:i] + placeholder + usage[i+1+j+1:]
}

// flagDocs lists c's visible flags, with --help last.
func flagDocs(c *cli.Command) []flagDoc {
	var out []flagDoc
	for _, f := range c.Flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		if slices.Contains(f.Names(), "help") {
			continue
		}
		out = append(out, describeFlag(f))
	}
	help := flagDoc{names: []string{"--help"}, usage: "show this help"}
	if !c.HideHelp {
		help.names = append(help.names, "-h")
	}
	return append(out, help)
}

// synopsis is c's usage line in words that must stay whole (a flag with
// its value): single-letter switches grouped as FreeBSD's pages group
// them, then each flag with a value, then the operands.
func synopsis(c *cli.Command) []string {
	var switches string
	var parts []string
	for _, d := range flagDocs(c) {
		if d.names[0] == "--help" {
			continue
		}
		switch {
		case d.arg == "" && len(d.names[0]) == 2:
			switches += d.names[0][1:]
		case d.arg == "":
			parts = append(parts, "["+d.names[0]+"]")
		default:
			parts = append(parts, "["+d.names[0]+" "+d.arg+"]")
		}
	}
	out := []string{"ufs2", c.Name}
	if switches != "" {
		out = append(out, "[-"+switches+"]")
	}
	out = append(out, parts...)
	return append(out, strings.Fields(c.ArgsUsage)...)
}

// wrap breaks s into lines of at most width columns at spaces, each
// indented by indent; a word longer than the width gets a line of its own.
func wrap(s string, width int, indent string) string {
	return wrapWords(strings.Fields(s), width, indent, indent)
}

// wrapWords is wrap over words already split, with the first line
// indented by indent and the others by cont.
func wrapWords(words []string, width int, indent, cont string) string {
	var b strings.Builder
	col := 0
	for i, w := range words {
		if col > 0 && col+1+len(w) > width {
			b.WriteString("\n")
			col = 0
		}
		if col == 0 {
			in := cont
			if i == 0 {
				in = indent
			}
			b.WriteString(in)
			col = len(in)
		} else {
			b.WriteString(" ")
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// helpWidth is the width help text is wrapped to.
const helpWidth = 79

// writeCommandHelp is --help of one command.
func writeCommandHelp(w io.Writer, c *cli.Command) {
	fmt.Fprintf(w, "NAME\n   ufs2 %s - %s\n\n", c.Name, c.Usage)
	fmt.Fprintf(w, "SYNOPSIS\n%s\n\n", wrapWords(synopsis(c), helpWidth, "   ", "        "))
	if c.Description != "" {
		fmt.Fprintf(w, "DESCRIPTION\n%s\n\n", indentText(c.Description, "   "))
	}
	fmt.Fprintln(w, "OPTIONS")
	for _, d := range flagDocs(c) {
		head := strings.Join(d.names, ", ")
		if d.arg != "" {
			head += " " + d.arg
		}
		text := d.usage
		if d.deflt != "" {
			text += " (default: " + d.deflt + ")"
		}
		if len(head) <= 16 {
			fmt.Fprintf(w, "   %-16s %s\n", head, strings.TrimLeft(wrap(text, helpWidth, strings.Repeat(" ", 20)), " "))
		} else {
			fmt.Fprintf(w, "   %s\n%s\n", head, wrap(text, helpWidth, strings.Repeat(" ", 20)))
		}
	}
	d := docs[c.Name]
	writeDocSections(w, d)
	fmt.Fprintf(w, "\nSEE ALSO\n%s\n", wrap(strings.Join(seeAlso(c.Name, d), ", "), helpWidth, "   "))
}

// writeDocSections writes EXAMPLES and EXIT STATUS.
func writeDocSections(w io.Writer, d manDoc) {
	if len(d.Examples) > 0 {
		fmt.Fprintln(w, "\nEXAMPLES")
		for i, e := range d.Examples {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "   %s\n%s\n", e.Cmd, wrap(e.What, helpWidth, "       "))
		}
	}
	if d.Exit != "" {
		fmt.Fprintf(w, "\nEXIT STATUS\n%s\n", wrap(d.Exit, helpWidth, "   "))
	}
}

// seeAlso is a page's SEE ALSO list: ufs2(8) for a command, then what the
// command names; ufs2(8) itself lists every command's page.
func seeAlso(name string, d manDoc) []string {
	if name == "" {
		var out []string
		for _, c := range visibleCommands(commands) {
			out = append(out, "ufs2-"+c.Name+"(8)")
		}
		return append(out, d.SeeAlso...)
	}
	return append([]string{"ufs2(8)"}, d.SeeAlso...)
}

// indentText indents every non-empty line of s.
func indentText(s, indent string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = indent + l
		}
	}
	return strings.Join(lines, "\n")
}

// visibleCommands is cs without the hidden ones.
func visibleCommands(cs []*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, c := range cs {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}

// writeAppHelp is ufs2 --help (and, on stderr, the usage of a bare ufs2).
func writeAppHelp(w io.Writer, a *cli.App) {
	fmt.Fprintf(w, "NAME\n   ufs2 - %s\n\n", a.Usage)
	fmt.Fprintf(w, "SYNOPSIS\n   ufs2 [--help | --version]\n   ufs2 COMMAND [OPTIONS] [ARGS]\n\n")
	fmt.Fprintf(w, "DESCRIPTION\n%s\n\n", indentText(a.Description, "   "))
	fmt.Fprintln(w, "COMMANDS")
	for _, c := range visibleCommands(a.Commands) {
		fmt.Fprintf(w, "   %-8s %s\n", c.Name, c.Usage)
	}
	fmt.Fprintf(w, "\n   ufs2 COMMAND --help describes each.\n\n")
	fmt.Fprintln(w, "OPTIONS")
	fmt.Fprintf(w, "   %-16s %s\n   %-16s %s\n", "--help, -h", "show this help", "--version", "print the version")
	writeDocSections(w, appDoc)
}

// printHelp replaces urfave/cli's template help: data is the *cli.App or
// the *cli.Command whose help was asked for.
func printHelp(w io.Writer, _ string, data any) {
	if w == nil {
		w = os.Stdout
	}
	switch d := data.(type) {
	case *cli.App:
		writeAppHelp(w, d)
	case *cli.Command:
		writeCommandHelp(w, d)
	}
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nearestCommand is the visible command closest to name, or "" when none
// is close enough to be what was meant: a prefix of a command's name, or
// within a third of the name's length in edits (at least one).
func nearestCommand(cs []*cli.Command, name string) string {
	best, bestD := "", 0
	for _, c := range visibleCommands(cs) {
		if name != "" && strings.HasPrefix(c.Name, name) {
			return c.Name
		}
		if d := editDistance(name, c.Name); best == "" || d < bestD {
			best, bestD = c.Name, d
		}
	}
	if bestD > max(1, (len(name)+2)/3) {
		return ""
	}
	return best
}

// appAction runs when no command matched: a bare ufs2 (help on stderr,
// exit 64, as FreeBSD's usage()), "ufs2 help [COMMAND]", or an unknown
// command (the nearest one suggested, exit 64).
func appAction(c *cli.Context) error {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		writeAppHelp(os.Stderr, c.App)
		return exitf(exitUsage, "")
	case args[0] == "help" && len(args) == 1:
		writeAppHelp(c.App.Writer, c.App)
		return nil
	case args[0] == "help":
		for _, cmd := range c.App.Commands {
			if cmd.HasName(args[1]) {
				writeCommandHelp(c.App.Writer, cmd)
				return nil
			}
		}
		args = args[1:]
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if near := nearestCommand(c.App.Commands, args[0]); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return exitf(exitUsage, "%s (ufs2 --help lists the commands)", msg)
}

// usageError is the OnUsageError of every command: a flag the command
// does not have, a value that does not parse.
func usageError(name string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		if name == "" {
			return exitf(exitUsage, "%v; see ufs2 --help", err)
		}
		return exitf(exitUsage, "%s: %v; see ufs2 %s --help", name, err, name)
	}
}
