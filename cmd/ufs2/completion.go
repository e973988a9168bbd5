package main

// Shell completion scripts for bash and zsh, made from the command
// definitions: command names, each command's flags, and files for the
// operands.

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash or zsh",
		ArgsUsage: "bash|zsh",
		Description: "Prints a script that completes ufs2's commands, their options and file\n" +
			"names. Load it in the running shell, or install it where the shell looks\n" +
			"for completions.",
		Action: completionAction,
	}, manDoc{
		Examples: []example{
			{`source <(ufs2 completion bash)`, "Complete ufs2 in the running bash."},
			{"ufs2 completion bash | sudo tee /usr/share/bash-completion/completions/ufs2", "Install the bash completion for every user (bash-completion loads it on first use)."},
			{`ufs2 completion zsh > "${fpath[1]}/_ufs2"`, "Install the zsh completion into the first directory of fpath; it is used by shells started afterwards."},
		},
		Exit:    "0 on success, 64 for a shell other than bash or zsh.",
		SeeAlso: []string{"ufs2-man(8)", "bash(1)", "zshcompsys(1)"},
	}))
}

func completionAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return exitf(exitUsage, "completion: want bash or zsh; see ufs2 completion --help")
	}
	switch sh := c.Args().First(); sh {
	case "bash":
		writeBashCompletion(c.App.Writer, c.App.Commands)
	case "zsh":
		writeZshCompletion(c.App.Writer, c.App.Commands)
	default:
		return exitf(exitUsage, "completion: %q: only bash and zsh are supported", sh)
	}
	return nil
}

// operandWords gives, for commands whose operands are words rather than
// files, the words to complete.
func operandWords(name string, cs []*cli.Command) []string {
	switch name {
	case "completion":
		return []string{"bash", "zsh"}
	case "man":
		var out []string
		for _, c := range visibleCommands(cs) {
			out = append(out, c.Name)
		}
		return out
	}
	return nil
}

func writeBashCompletion(w io.Writer, cs []*cli.Command) {
	var names []string
	for _, c := range visibleCommands(cs) {
		names = append(names, c.Name)
	}
	fmt.Fprintf(w, `# bash completion for ufs2; made by "ufs2 completion bash".
_ufs2() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd= i opts= words=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $cmd in
	'') COMPREPLY=($(compgen -W '%s --help --version' -- "$cur")); return ;;
`, strings.Join(names, " "))
	for _, c := range visibleCommands(cs) {
		var flags []string
		for _, d := range flagDocs(c) {
			flags = append(flags, d.names...)
		}
		fmt.Fprintf(w, "\t%s) opts='%s'; words='%s' ;;\n", c.Name, strings.Join(flags, " "), strings.Join(operandWords(c.Name, cs), " "))
	}
	fmt.Fprint(w, `	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	elif [[ -n $words ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	fi
}
complete -o default -o bashdefault -F _ufs2 ufs2
`)
}

// zshQuote makes s safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	r := strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`)
	return r.Replace(s)
}

func writeZshCompletion(w io.Writer, cs []*cli.Command) {
	fmt.Fprint(w, `#compdef ufs2
# zsh completion for ufs2; made by "ufs2 completion zsh".
_ufs2() {
	local -a cmds
	cmds=(
`)
	for _, c := range visibleCommands(cs) {
		fmt.Fprintf(w, "\t\t'%s:%s'\n", c.Name, zshQuote(c.Usage))
	}
	fmt.Fprint(w, `	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'ufs2 command' cmds
		return
	fi
	local cmd=$words[2]
	shift words
	(( CURRENT-- ))
	case $cmd in
`)
	for _, c := range visibleCommands(cs) {
		var specs []string
		for _, d := range flagDocs(c) {
			for _, n := range d.names {
				spec := "'" + n + "[" + zshQuote(d.usage) + "]"
				if d.arg != "" {
					spec += ":" + zshQuote(d.arg) + ":_files"
				}
				specs = append(specs, spec+"'")
			}
		}
		operands := "'*:file:_files'"
		if ws := operandWords(c.Name, cs); ws != nil {
			operands = "'1:" + c.Name + ":(" + strings.Join(ws, " ") + ")'"
		}
		specs = append(specs, operands)
		fmt.Fprintf(w, "\t%s)\n\t\t_arguments -s %s ;;\n", c.Name, strings.Join(specs, " \\\n\t\t\t"))
	}
	fmt.Fprint(w, `	esac
}
if [[ $funcstack[1] == _ufs2 ]]; then
	_ufs2 "$@"
else
	compdef _ufs2 ufs2
fi
`)
}
