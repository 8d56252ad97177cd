package cli

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// resource is a top-level command (org, user, …) grouping the actions on
// one kind of thing.
type resource struct {
	name  string
	short string
	long  string
	// actions become its subcommands.
	actions []action
}

// targetHelp explains where every command sends its request.
const targetHelp = `
By default the request goes to Caddy's admin endpoint (--address, default
localhost:2019 or $CADDY_ADMIN), under /tokengate/, as the machine's
operator. With --url it goes to a tokengate_admin mount instead, such as
https://gw.example.com/admin, authenticated with the admin token in the
TOKENGATE_TOKEN environment variable (there is no flag for the token, so
that it stays out of shell history and process lists).

The API's JSON answer is printed on stdout. Errors go to stderr, with exit
status 1 when the API refused or could not be reached, and 2 when the
command was given wrongly (nothing is sent then). Flags are named after the
API's JSON fields: --expires-in and --expires_in are the same flag.`

// caddyCommand is the resource as a Caddy subcommand.
func (r resource) caddyCommand() caddycmd.Command {
	return caddycmd.Command{
		Name:      r.name,
		Usage:     "<" + strings.Join(r.actionNames(), "|") + "> [flags]",
		Short:     r.short,
		Long:      strings.TrimSpace(r.long + "\n" + targetHelp),
		CobraFunc: r.setUp,
	}
}

func (r resource) actionNames() []string {
	names := make([]string, len(r.actions))
	for i, a := range r.actions {
		names[i] = a.name
	}
	return names
}

// setUp adds the subcommands and the flags they share, and makes every
// mistake in giving them exit with the usage status.
func (r resource) setUp(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", caddy.DefaultAdminListen, "address of Caddy's admin endpoint")
	pf.String("url", "", "base URL of a tokengate_admin mount, instead of the admin endpoint (token from $"+tokenEnv+")")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return finish(c, &usageError{msg: err.Error()})
	})
	// Without a subcommand there is nothing to do; say what there is.
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return finish(c, usageErrorf("unknown command %q for %q; choose one of: %s",
				args[0], c.CommandPath(), strings.Join(r.actionNames(), ", ")))
		}
		return finish(c, usageErrorf("choose one of: %s", strings.Join(r.actionNames(), ", ")))
	}
	for _, a := range r.actions {
		cmd.AddCommand(a.command())
	}
	cmd.SetGlobalNormalizationFunc(dashes)
}
