package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"clustertx/config"
)

// completeFlag is what urfave/cli's completion scripts append to the words
// before the cursor to ask for candidates.
const completeFlag = "--generate-shell-completion"

// complete answers a completion request: the words before the cursor (and
// the partial word when it starts with "-") followed by completeFlag. It
// prints one candidate a line, as "word:description" for flags. urfave/cli
// cannot do this itself because -c/-p/-t/-m are consumed by splitArgs
// before it sees them; after them it offers the config's names. Printing
// nothing lets the shell complete file names.
func complete(args []string, flags []cli.Flag, cmds []*cli.Command, out io.Writer) {
	words := args[1 : len(args)-1]
	// The scripts append the word under the cursor only when it starts with
	// "-": a last word that is a whole flag taking a value (`-c `) is the
	// one before the cursor, whose value is wanted.
	cur := ""
	if n := len(words); n > 0 && strings.HasPrefix(words[n-1], "-") && !takesValue(flags, cmds, words[n-1]) {
		cur, words = words[n-1], words[:n-1]
	}
	sub := ""
	if isSubcommand(words, flags, cmds) {
		for _, w := range words {
			if !strings.HasPrefix(w, "-") {
				sub = w
				break
			}
		}
	}
	prev := ""
	if len(words) > 0 {
		prev = words[len(words)-1]
	}
	if sub == "completion" {
		if prev == "completion" {
			fmt.Fprintln(out, "bash\nzsh\nfish\npwsh")
		}
		return
	}
	if cur != "" && !strings.Contains(cur, "=") {
		all := flags
		if sub != "" {
			for _, c := range cmds {
				if c.HasName(sub) {
					all = append(slices.Clone(c.Flags), subcommandFlags(flags)...)
				}
			}
		}
		for _, f := range all {
			for _, n := range f.Names() {
				name := "--" + n
				if len(n) == 1 {
					name = "-" + n
				}
				if strings.HasPrefix(name, cur) {
					fmt.Fprintf(out, "%s:%s\n", name, flagUsage(f))
				}
			}
		}
		return
	}
	var names []string
	switch prev {
	case "-c", "--cluster":
		if cfg := completionConfig(words); cfg != nil {
			names = cfg.ClusterNames()
		}
	case "-p", "--profile", "-t", "--template", "-m", "--mixins":
		cfg := completionConfig(words)
		if cfg == nil {
			break
		}
		for _, n := range cfg.Profiles.Names() {
			p, _ := cfg.Profiles.Get(n)
			if p != nil && p.Template == (prev == "-t" || prev == "--template") {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		fmt.Fprintln(out, n)
	}
}

// takesValue reports whether word is the whole name of a flag (global or
// a subcommand's) that takes a value.
func takesValue(flags []cli.Flag, cmds []*cli.Command, word string) bool {
	all := slices.Clone(flags)
	for _, c := range cmds {
		all = append(all, c.Flags...)
	}
	for _, f := range all {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok || !d.TakesValue() {
			continue
		}
		for _, n := range f.Names() {
			if word == "-"+n || word == "--"+n {
				return true
			}
		}
	}
	return false
}

// subcommandFlags are the global flags a subcommand also accepts.
func subcommandFlags(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if hostsFlags[f.Names()[0]] {
			out = append(out, f)
		}
	}
	return out
}

func flagUsage(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		u := strings.ReplaceAll(d.GetUsage(), "`", "")
		for _, sep := range []string{" (", "; "} {
			if i := strings.Index(u, sep); i > 0 {
				u = u[:i]
			}
		}
		return u
	}
	return ""
}

// completionConfig loads the config the command line names (-y FILE), or
// the one a run would find; nil when it does not load.
func completionConfig(words []string) *config.Config {
	path := ""
	for i, w := range words {
		switch {
		case (w == "-y" || w == "--config") && i+1 < len(words):
			path = words[i+1]
		case strings.HasPrefix(w, "--config="):
			path = strings.TrimPrefix(w, "--config=")
		}
	}
	cfg, err := config.Load(config.LoadOptions{Path: expandHome(path)})
	if err != nil {
		return nil
	}
	return cfg
}

// configureCompletion shows `clustertx completion SHELL` in --help and
// makes the fish script complete file names too (urfave/cli's passes -f,
// which suits commands that take no files; ours mostly takes files).
func configureCompletion(cmd *cli.Command) {
	cmd.Hidden = false
	cmd.Usage = "print the shell completion script for bash, zsh, fish or pwsh (cluster and profile names come from the config)"
	for _, sub := range cmd.Commands {
		if sub.Name == "fish" {
			sub.Action = func(_ context.Context, c *cli.Command) error {
				_, err := io.WriteString(c.Root().Writer, fishCompletion)
				return err
			}
		}
	}
}

const fishCompletion = `# fish completion for clustertx: clustertx completion fish > ~/.config/fish/completions/clustertx.fish

function __clustertx_perform_completion
    set -l args (commandline -opc)
    set -l lastArg (commandline -ct)
    if string match -q -- "-*" $lastArg
        set results ($args[1] $args[2..-1] $lastArg --generate-shell-completion 2> /dev/null)
    else
        set results ($args[1] $args[2..-1] --generate-shell-completion 2> /dev/null)
    end
    for line in $results
        set -l parts (string split -m 1 ":" -- "$line")
        if test (count $parts) -eq 2
            printf "%s\t%s\n" "$parts[1]" "$parts[2]"
        else if test -n "$line"
            printf "%s\n" "$line"
        end
    end
end

complete -c clustertx -e
complete -c clustertx -a '(__clustertx_perform_completion)'
`
