package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestUsageErrors runs the real program with bad command lines: each
// exits 64 (EX_USAGE) with one line naming the problem.
func TestUsageErrors(t *testing.T) {
	bin := ufs2Binary(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string // in stderr
	}{
		{"no command", nil, "ufs2 COMMAND --help describes each"},
		{"misspelt command", []string{"nwfs", "x.img"}, `unknown command "nwfs"; did you mean "newfs"?`},
		{"prefix of a command", []string{"dumpf", "x.img"}, `did you mean "dumpfs"?`},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" (ufs2 --help lists the commands)`},
		{"help for an unknown command", []string{"help", "mout"}, `unknown command "mout"; did you mean "mount"?`},
		{"unknown global flag", []string{"--bogus"}, "flag provided but not defined: -bogus; see ufs2 --help"},
		{"unknown command flag", []string{"ls", "-Z", "x.img"}, "ls: flag provided but not defined: -Z; see ufs2 ls --help"},
		{"unknown newfs flag", []string{"newfs", "-Z", "x.img"}, "newfs: flag provided but not defined: -Z"},
		{"bad flag value", []string{"fsck", "-b", "x", "x.img"}, "fsck: invalid value"},
		{"missing operand", []string{"get", "x.img"}, "get: want TARGET PATH DEST"},
		{"unknown shell", []string{"completion", "fish"}, `"fish": only bash and zsh`},
		{"man of an unknown command", []string{"man", "fsk"}, `no command "fsk"; did you mean "fsck"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := fsckRun(t, bin, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.wantErr) || out != "" {
				t.Fatalf("ufs2 %q: exit %d, stdout %q, stderr %q; want exit 64 and %q on stderr", tt.args, code, out, errOut, tt.wantErr)
			}
			if tt.args != nil && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("ufs2 %q: more than one line on stderr:\n%s", tt.args, errOut)
			}
		})
	}
}

// TestHelpAndVersion checks the help that succeeds and the version,
// default and set at build time.
func TestHelpAndVersion(t *testing.T) {
	bin := ufs2Binary(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errOut, code := fsckRun(t, bin, args...)
		if code != 0 || !strings.Contains(out, "COMMANDS") || !strings.Contains(out, "newfs    construct") || errOut != "" {
			t.Errorf("ufs2 %q: exit %d, stderr %q, stdout:\n%s", args, code, errOut, out)
		}
	}
	for _, args := range [][]string{{"help", "newfs"}, {"newfs", "--help"}} {
		out, _, code := fsckRun(t, bin, args...)
		if code != 0 || !strings.Contains(out, "ufs2 newfs - construct") || !strings.Contains(out, "EXIT STATUS") {
			t.Errorf("ufs2 %q: exit %d:\n%s", args, code, out)
		}
	}
	out, _, code := fsckRun(t, bin, "--version")
	if code != 0 || !regexp.MustCompile(`^ufs2 version \S+\n$`).MatchString(out) {
		t.Errorf("ufs2 --version: exit %d, %q", code, out)
	}

	tagged := filepath.Join(t.TempDir(), "ufs2")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", tagged, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags: %v\n%s", err, b)
	}
	out, _, code = fsckRun(t, tagged, "--version")
	if code != 0 || out != "ufs2 version v9.8.7-test\n" {
		t.Errorf("ufs2 --version built with -X main.version=v9.8.7-test: exit %d, %q", code, out)
	}
}

// TestHelpShowsFlagsTruly checks every command's --help: a flag without a
// value shows none, no boolean shows a default, and -U says that soft
// updates are on by default.
func TestHelpShowsFlagsTruly(t *testing.T) {
	bin := ufs2Binary(t)
	app := newApp()
	for _, c := range visibleCommands(app.Commands) {
		out, _, code := fsckRun(t, bin, c.Name, "--help")
		if code != 0 {
			t.Errorf("ufs2 %s --help: exit %d", c.Name, code)
			continue
		}
		for _, bad := range []string{"(default: false)", "(default: true)"} {
			if strings.Contains(out, bad) {
				t.Errorf("ufs2 %s --help shows %q:\n%s", c.Name, bad, out)
			}
		}
		if m := regexp.MustCompile(`(?m)^   -[^ ]* (value|VALUE)\b.*`).FindString(out); m != "" {
			t.Errorf("ufs2 %s --help shows a flag's value without a name: %q", c.Name, m)
		}
		for _, section := range []string{"NAME", "SYNOPSIS", "OPTIONS", "EXAMPLES", "EXIT STATUS", "SEE ALSO"} {
			if !strings.Contains(out, "\n"+section+"\n") && !strings.HasPrefix(out, section+"\n") {
				t.Errorf("ufs2 %s --help has no %s section", c.Name, section)
			}
		}
	}
	out, _, _ := fsckRun(t, bin, "chown", "--help")
	if !regexp.MustCompile(`(?m)^   -h +change a symlink itself`).MatchString(out) {
		t.Errorf("chown --help does not show -h as a flag without a value:\n%s", out)
	}
	out, _, _ = fsckRun(t, bin, "newfs", "--help")
	if !regexp.MustCompile(`(?m)^   -U +soft updates; they are on by default`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^   -b SIZE +block SIZE in bytes \(default: 32k\)`).MatchString(out) {
		t.Errorf("newfs --help does not give -U's and -b's defaults:\n%s", out)
	}
}

// manSections are the sections every page has, in this order.
var manSections = []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "EXIT STATUS", "SEE ALSO"}

// manMacros are the man(7) requests the pages may use.
var manMacros = []string{"TH", "SH", "PP", "TP", "RS", "RE", "nf", "fi", "B", "BR", "I", "br", "nh", "ad", `\"`}

// checkManPage checks one page's structure: the sections in order, each
// with text, and only known requests.
func checkManPage(t *testing.T, name, page string) {
	t.Helper()
	var sections []string
	lines := strings.Split(strings.TrimRight(page, "\n"), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, ".") {
			continue
		}
		req, arg, _ := strings.Cut(l[1:], " ")
		if !slices.Contains(manMacros, req) && !strings.HasPrefix(req, `\"`) {
			t.Errorf("%s:%d: request %q is not one the pages use", name, i+1, req)
		}
		if req == "SH" {
			sections = append(sections, strings.Trim(arg, `"`))
			if i+1 == len(lines) || strings.HasPrefix(lines[i+1], ".SH") {
				t.Errorf("%s: section %s is empty", name, arg)
			}
		}
	}
	if !slices.Equal(sections, manSections) {
		t.Errorf("%s: sections %q, want %q", name, sections, manSections)
	}
	if !strings.HasPrefix(lines[0], `.\"`) || !strings.HasPrefix(lines[1], ".TH ") {
		t.Errorf("%s: does not start with a comment and .TH: %q", name, lines[:2])
	}
}

// TestManPages writes the pages with the real program and checks that
// every command has one, with every section, that groff formats without
// a warning and man -l shows.
func TestManPages(t *testing.T) {
	bin := ufs2Binary(t)
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Fatal("groff not found: install groff-base (apt-get install groff-base; .ci/run does)")
	}
	manCmd, err := exec.LookPath("man")
	if err != nil {
		t.Fatal("man not found: install man-db (apt-get install man-db; .ci/run does)")
	}
	dir := filepath.Join(t.TempDir(), "man8")
	out, errOut, code := fsckRun(t, bin, "man", "--dir", dir)
	if code != 0 {
		t.Fatalf("ufs2 man --dir: exit %d: %s", code, errOut)
	}
	want := []string{"ufs2.8"}
	for _, c := range visibleCommands(newApp().Commands) {
		want = append(want, "ufs2-"+c.Name+".8")
		if len(docs[c.Name].Examples) == 0 || docs[c.Name].Exit == "" {
			t.Errorf("command %s has no examples or exit status: give them with withDoc where it is registered", c.Name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ufs2 man --dir wrote %q, want %q", got, want)
	}
	if !strings.Contains(out, "wrote "+strconv.Itoa(len(want))+" pages") {
		t.Errorf("ufs2 man --dir said %q", out)
	}
	for _, name := range want {
		page, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checkManPage(t, name, string(page))
		var stderr bytes.Buffer
		g := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, name))
		g.Stderr = &stderr
		if err := g.Run(); err != nil || stderr.Len() != 0 {
			t.Errorf("groff -man -ww %s: %v\n%s", name, err, stderr.String())
		}
	}
	// One page as a reader sees it, and the same page on stdout.
	m := exec.Command(manCmd, "-l", filepath.Join(dir, "ufs2-newfs.8"))
	m.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	text, err := m.Output()
	if err != nil {
		t.Fatalf("man -l ufs2-newfs.8: %v", err)
	}
	for _, s := range []string{"ufs2-newfs - construct a new UFS2 filesystem", "-s SIZE", "EXAMPLES", "ufs2 newfs -s 10g disk.img", "EXIT STATUS", "ufs2-fsck(8)"} {
		if !strings.Contains(string(text), s) {
			t.Errorf("man -l ufs2-newfs.8 lacks %q:\n%s", s, text)
		}
	}
	stdout, _, code := fsckRun(t, bin, "man", "newfs")
	file, _ := os.ReadFile(filepath.Join(dir, "ufs2-newfs.8"))
	if code != 0 || stdout != string(file) {
		t.Errorf("ufs2 man newfs (exit %d) differs from the page --dir wrote", code)
	}
}

// TestCompletion loads the bash script in bash and completes with it; the
// zsh script is checked for every command and flag.
func TestCompletion(t *testing.T) {
	bin := ufs2Binary(t)
	script, _, code := fsckRun(t, bin, "completion", "bash")
	if code != 0 {
		t.Fatalf("ufs2 completion bash: exit %d", code)
	}
	path := filepath.Join(t.TempDir(), "ufs2.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash not found: install bash")
	}
	tests := []struct {
		words []string // the command line, the last word being completed
		want  string
	}{
		{[]string{"ufs2", "ne"}, "newfs"},
		{[]string{"ufs2", "ch"}, "chmod chown"},
		{[]string{"ufs2", "--v"}, "--version"},
		{[]string{"ufs2", "newfs", "--f"}, "--from"},
		{[]string{"ufs2", "chown", "-"}, "-R -h --help"},
		{[]string{"ufs2", "completion", ""}, "bash zsh"},
		{[]string{"ufs2", "man", "fs"}, "fsck"},
	}
	for _, tt := range tests {
		var quoted []string
		for _, w := range tt.words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + path + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(tt.words)-1) + `; _ufs2; echo "${COMPREPLY[*]}"`
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("completing %q: %v, got %q, want %q", tt.words, err, out, tt.want)
		}
	}

	zsh, _, code := fsckRun(t, bin, "completion", "zsh")
	if code != 0 || !strings.HasPrefix(zsh, "#compdef ufs2\n") {
		t.Fatalf("ufs2 completion zsh: exit %d, starts %q", code, zsh[:min(len(zsh), 20)])
	}
	for _, c := range visibleCommands(newApp().Commands) {
		if !strings.Contains(zsh, "\t\t'"+c.Name+":") || !strings.Contains(zsh, "\t"+c.Name+")\n") {
			t.Errorf("zsh completion lacks command %s", c.Name)
		}
		for _, d := range flagDocs(c) {
			for _, n := range d.names {
				if !strings.Contains(zsh, "'"+n+"[") {
					t.Errorf("zsh completion of %s lacks %s", c.Name, n)
				}
			}
		}
	}
}

func TestNearestCommand(t *testing.T) {
	cs := visibleCommands(newApp().Commands)
	for _, tt := range []struct{ in, want string }{
		{"nwfs", "newfs"},
		{"mout", "mount"},
		{"fsk", "fsck"},
		{"dumpf", "dumpfs"},
		{"lss", "ls"},
		{"cp", ""},
		{"frobnicate", ""},
	} {
		if got := nearestCommand(cs, tt.in); got != tt.want {
			t.Errorf("nearestCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
