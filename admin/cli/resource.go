package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// resource is a subcommand of `tokengate` (org, user, …) grouping the
// actions on one kind of thing.
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

The API's JSON answer is printed on stdout. Errors go to stderr, and the
exit status is Caddy's: 0 on success, 1 on any failure (the command was
given wrongly and nothing was sent, the API refused, or it could not be
reached). Flags are named after the API's JSON fields (--expires-in and
--expires_in are the same flag); ids after what they identify: --org,
--account, --user, --token, --policy, --webhook.`

// command is the resource as a cobra command.
func (r resource) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   r.name + " <" + strings.Join(r.actionNames(), "|") + ">",
		Short: r.short,
		Long:  strings.TrimSpace(r.long + "\n" + targetHelp),
		// Without an action there is nothing to do; say what there is.
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return finish(c, usageErrorf("unknown command %q for %q; choose one of: %s",
					args[0], displayPath(c.CommandPath()), strings.Join(r.actionNames(), ", ")))
			}
			return finish(c, usageErrorf("choose one of: %s", strings.Join(r.actionNames(), ", ")))
		},
	}
	for _, a := range r.actions {
		cmd.AddCommand(a.command())
	}
	return cmd
}

func (r resource) actionNames() []string {
	names := make([]string, len(r.actions))
	for i, a := range r.actions {
		names[i] = a.name
	}
	return names
}
