package main

// The man pages: ufs2(8) and ufs2-COMMAND(8), written in man(7) roff from
// the same command definitions --help prints (help.go).

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "man",
		Usage:     "write the manual pages of ufs2 and its commands",
		ArgsUsage: "[COMMAND]",
		Description: "Prints the manual page of COMMAND (of ufs2 itself without one) in man(7)\n" +
			"format on standard output, or with --dir writes every page into DIR:\n" +
			"ufs2.8 and ufs2-COMMAND.8 for each command. The pages are made from the\n" +
			"same definitions as --help.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "write all pages into the directory `DIR` (made if missing)"},
		},
		Action: manAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 man newfs | man -l -", "Read the page of ufs2 newfs without installing it."},
			{"sudo ufs2 man --dir /usr/local/share/man/man8 && sudo mandb -q", "Install every page, so that man ufs2-fsck works."},
		},
		Exit:    "0 on success, 1 when a page cannot be written, 64 for a bad command line or an unknown COMMAND.",
		SeeAlso: []string{"ufs2-completion(8)", "man(1)"},
	}))
}

func manAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return exitf(exitUsage, "man: want at most one COMMAND; see ufs2 man --help")
	}
	if dir := c.String("dir"); dir != "" {
		if c.NArg() != 0 {
			return exitf(exitUsage, "man: --dir writes every page; give no COMMAND with it")
		}
		names, err := writeManPages(c.App, dir)
		if err != nil {
			return exitf(1, "man: %v", err)
		}
		fmt.Fprintf(c.App.Writer, "wrote %d pages to %s\n", len(names), dir)
		return nil
	}
	if c.NArg() == 0 {
		writeAppMan(c.App.Writer, c.App)
		return nil
	}
	name := c.Args().First()
	for _, cmd := range visibleCommands(c.App.Commands) {
		if cmd.Name == name {
			writeCommandMan(c.App.Writer, cmd, c.App.Version)
			return nil
		}
	}
	msg := fmt.Sprintf("man: no command %q", name)
	if near := nearestCommand(c.App.Commands, name); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return exitf(exitUsage, "%s", msg)
}

// writeManPages writes ufs2.8 and one ufs2-COMMAND.8 per visible command
// into dir and returns the file names.
func writeManPages(a *cli.App, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	write := func(name string, fn func(io.Writer)) error {
		var b strings.Builder
		fn(&b)
		return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
	}
	names := []string{"ufs2.8"}
	if err := write("ufs2.8", func(w io.Writer) { writeAppMan(w, a) }); err != nil {
		return nil, err
	}
	for _, c := range visibleCommands(a.Commands) {
		name := "ufs2-" + c.Name + ".8"
		if err := write(name, func(w io.Writer) { writeCommandMan(w, c, a.Version) }); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// roffText escapes s for running text: backslashes, hyphens (as \- so
// that options copy and search as ASCII), and a control character at the
// start of a line.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// roffParagraphs turns help text (paragraphs separated by blank lines,
// indented lines kept as they are) into man(7) paragraphs.
func roffParagraphs(w io.Writer, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			fmt.Fprintln(w, ".PP")
		}
		inBlock := false
		for _, line := range strings.Split(para, "\n") {
			indented := strings.HasPrefix(line, " ")
			switch {
			case indented && !inBlock:
				fmt.Fprintln(w, ".RS 2\n.nf")
			case !indented && inBlock:
				fmt.Fprintln(w, ".fi\n.RE")
			}
			inBlock = indented
			if indented {
				line = strings.TrimPrefix(line, "  ")
			}
			fmt.Fprintln(w, roffText(line))
		}
		if inBlock {
			fmt.Fprintln(w, ".fi\n.RE")
		}
	}
}

// roffHeader writes .TH and NAME.
func roffHeader(w io.Writer, page, name, usage, version string) {
	fmt.Fprintf(w, ".\\\" Made by ufs2 man from the command definitions; do not edit.\n")
	fmt.Fprintf(w, ".TH %s 8 \"\" \"ufs2 %s\" \"System Manager's Manual\"\n", strings.ToUpper(page), roffText(version))
	fmt.Fprintln(w, ".nh\n.ad l")
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", roffText(name), roffText(usage))
}

// roffDocSections writes EXAMPLES, EXIT STATUS and SEE ALSO.
func roffDocSections(w io.Writer, d manDoc, seeAlso []string) {
	fmt.Fprintln(w, ".SH EXAMPLES")
	for i, e := range d.Examples {
		if i > 0 {
			fmt.Fprintln(w, ".PP")
		}
		fmt.Fprintf(w, ".RS 2\n.nf\n\\fB%s\\fR\n.fi\n.RE\n%s\n", roffText(e.Cmd), roffText(e.What))
	}
	fmt.Fprintf(w, ".SH EXIT STATUS\n%s\n", roffText(d.Exit))
	fmt.Fprintln(w, ".SH SEE ALSO")
	for i, ref := range seeAlso {
		name, sect, _ := strings.Cut(strings.TrimSuffix(ref, ")"), "(")
		sep := ","
		if i == len(seeAlso)-1 {
			sep = ""
		}
		fmt.Fprintf(w, ".BR %s (%s)%s\n", roffText(name), sect, sep)
	}
}

// writeCommandMan writes the page ufs2-NAME(8) of c.
func writeCommandMan(w io.Writer, c *cli.Command, version string) {
	roffHeader(w, "ufs2-"+c.Name, "ufs2-"+c.Name, c.Usage, version)
	fmt.Fprintln(w, ".SH SYNOPSIS")
	words := synopsis(c)
	fmt.Fprintf(w, ".B %s\n", strings.Join(words[:2], " "))
	var rest []string
	for _, word := range words[2:] {
		// Unbreakable spaces keep a flag with its value.
		rest = append(rest, strings.ReplaceAll(roffText(word), " ", `\ `))
	}
	if len(rest) > 0 {
		fmt.Fprintln(w, strings.Join(rest, " "))
	}
	fmt.Fprintln(w, ".SH DESCRIPTION")
	roffParagraphs(w, c.Description)
	fmt.Fprintln(w, ".SH OPTIONS")
	for _, d := range flagDocs(c) {
		var head []string
		for _, n := range d.names {
			h := `\fB` + roffText(n) + `\fR`
			if d.arg != "" {
				h += ` \fI` + roffText(d.arg) + `\fR`
			}
			head = append(head, h)
		}
		text := d.usage
		if d.deflt != "" {
			text += " (default: " + d.deflt + ")"
		}
		fmt.Fprintf(w, ".TP\n%s\n%s\n", strings.Join(head, ", "), roffText(text))
	}
	d := docs[c.Name]
	roffDocSections(w, d, seeAlso(c.Name, d))
}

// writeAppMan writes ufs2(8): what ufs2 is and the list of its commands.
func writeAppMan(w io.Writer, a *cli.App) {
	roffHeader(w, "ufs2", "ufs2", a.Usage, a.Version)
	fmt.Fprintln(w, ".SH SYNOPSIS")
	fmt.Fprintln(w, ".B ufs2\n[\\-\\-help | \\-\\-version]\n.br\n.B ufs2\n.I command\n[\\fIoptions\\fR] [\\fIargs\\fR]")
	fmt.Fprintln(w, ".SH DESCRIPTION")
	roffParagraphs(w, a.Description)
	fmt.Fprintln(w, ".PP\nThe commands, each described in its own page:")
	for _, c := range visibleCommands(a.Commands) {
		fmt.Fprintf(w, ".TP\n.BR \"ufs2 %s\" \" (ufs2\\-%s(8))\"\n%s\n", c.Name, roffText(c.Name), roffText(c.Usage))
	}
	fmt.Fprintln(w, ".SH OPTIONS")
	fmt.Fprintln(w, ".TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR\nshow the commands; \\fBufs2\\fR \\fIcommand\\fR \\fB\\-\\-help\\fR describes one")
	fmt.Fprintln(w, ".TP\n\\fB\\-\\-version\\fR\nprint the version")
	roffDocSections(w, appDoc, seeAlso("", appDoc))
}
