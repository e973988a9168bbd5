// Command ufs2 formats, inspects, checks and mounts FreeBSD UFS2 filesystems
// from Linux, with no kernel module.
//
// Each subcommand lives in its own file and registers itself from an init
// function with register; this file only wires them together and turns
// errors into FreeBSD-style exit codes. No filesystem logic lives here.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// commands is filled by the init functions of the subcommand files.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

// exitError carries a process exit status with a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitf returns an error that makes ufs2 print "ufs2 CMD: msg" and exit
// with code.
func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	cli.HelpPrinter = printHelp
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	cli.HelpFlag = &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show this help"}
	for _, c := range commands {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError(c.Name)
		}
	}
	return &cli.App{
		Name:    "ufs2",
		Version: appVersion(),
		Usage:   "FreeBSD's UFS2 filesystem from Linux: newfs, dumpfs, fsck, mount and offline file access",
		Description: "TARGET is an image file, a block device, or PATH@N for partition N of a\n" +
			"GPT or MBR partition table inside an image or device.",
		Commands:        commands,
		HideHelpCommand: true,
		// Flags after positional arguments are not reordered; FreeBSD's tools
		// also want options first.
		UseShortOptionHandling: true,
		Action:                 appAction,
		OnUsageError:           usageError(""),
		ExitErrHandler:         func(*cli.Context, error) {},
	}
}

func main() {
	os.Exit(run(os.Args))
}

// run executes the CLI and maps errors to exit codes: an exitError keeps its
// code, a usage error is exitUsage (64, EX_USAGE), anything else 1.
func run(args []string) int {
	err := newApp().Run(args)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(os.Stderr, "ufs2: %s\n", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(os.Stderr, "ufs2: %v\n", err)
	return 1
}
