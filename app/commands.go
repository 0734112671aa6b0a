package app

import "github.com/urfave/cli/v3"

// commands lists the subcommands (`clustertx NAME …`). A first positional
// argument that names one is a subcommand, not a file; a file with such a
// name can still be given as ./NAME.
func commands() []*cli.Command {
	return []*cli.Command{
		hostsCommand(),
		qualityCommand(),
	}
}
