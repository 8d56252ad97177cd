package cli

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// commandName is the one top-level command the plugin adds to Caddy: the
// admin commands live under it (`caddy tokengate user create …`), so no
// generic name such as user or token can collide with another plugin's.
const commandName = "tokengate"

// docsURL is where this command line is documented: the page, and its
// path in the source, which is there whether or not the module is published.
const docsURL = "https://github.com/tokengate/tokengate/blob/main/docs/cli.md (docs/cli.md in the source)"

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  commandName,
		Usage: "<" + strings.Join(resourceNames(), "|") + "> [<action>] [flags]",
		Short: "Manages tokengate organizations, accounts, users, tokens and policies",
		Long: strings.TrimSpace(`
The command line of tokengate's admin API: one subcommand per kind of
thing (org, account, user, token, policy, audit), one action each per
route of the API.
` + targetHelp),
		CobraFunc: setUp,
	})
	// Lets the usage text show the short form the tokengate binary takes.
	cobra.AddTemplateFunc("tokengateDisplayPath", displayPath)
}

func resourceNames() []string {
	names := make([]string, len(resources), len(resources)+1)
	for i, r := range resources {
		names[i] = r.name
	}
	return append(names, statusAction.name)
}

// setUp builds the command tree under `tokengate`: the flags every command
// shares, usage mistakes reported as such, and help that shows the form
// of the command that was typed and points at this project's docs.
func setUp(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", caddy.DefaultAdminListen, "address of Caddy's admin endpoint")
	pf.String("url", "", "base URL of a tokengate_admin mount, instead of the admin endpoint (token from $"+tokenEnv+")")
	pf.String("output", outputJSON, "what to print: json (the API's answer), id (the id of what was created or shown, or of each listed), table (a row per object listed or shown, for people), or secret (the new secret alone)")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A command that has subcommands takes no arguments: a word before
		// the flag is a command it does not know, which is the mistake to
		// name ("user frobnicate --org x"), not the flag.
		if args := c.Flags().Args(); c.HasSubCommands() && len(args) > 0 {
			return c.RunE(c, args)
		}
		return finish(c, &usageError{msg: err.Error()})
	})
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return finish(c, usageErrorf("unknown command %q for %q; choose one of: %s",
				args[0], displayPath(c.CommandPath()), strings.Join(resourceNames(), ", ")))
		}
		return finish(c, usageErrorf("choose one of: %s", strings.Join(resourceNames(), ", ")))
	}
	for _, r := range resources {
		cmd.AddCommand(r.command())
	}
	cmd.AddCommand(statusAction.command())
	cmd.SetGlobalNormalizationFunc(dashes)

	// The command has no parent yet, so these are cobra's own templates:
	// Caddy's root adds a footer pointing at Caddy's docs, which say
	// nothing about these commands.
	cmd.SetHelpTemplate(cmd.HelpTemplate() + "\nDocumentation: " + docsURL + "\n")
	cmd.SetUsageTemplate(strings.NewReplacer(
		"{{.UseLine}}", "{{tokengateDisplayPath .UseLine}}",
		"{{.CommandPath}}", "{{tokengateDisplayPath .CommandPath}}",
	).Replace(cmd.UsageTemplate()))
}

// shortForm is set by ShortForm: the binary takes the admin commands
// without the word tokengate, and help and messages show them so.
var shortForm bool

// displayPath is a command path (or usage line) as the user can type it:
// "tokengate user create" rather than "tokengate tokengate user create"
// in the tokengate binary; unchanged in any other Caddy build.
func displayPath(path string) string {
	if !shortForm {
		return path
	}
	root, rest, _ := strings.Cut(path, " ")
	if rest == commandName {
		return root
	}
	if after, ok := strings.CutPrefix(rest, commandName+" "); ok {
		return root + " " + after
	}
	return path
}

// invocation is what starts an admin command in examples: "tokengate" in
// the tokengate binary, "caddy tokengate" in another Caddy build.
func invocation() string {
	if shortForm {
		return rootName()
	}
	return rootName() + " " + commandName
}

// rootName is the name of the binary, as caddycmd names its root command.
func rootName() string {
	if caddy.CustomBinaryName != "" {
		return caddy.CustomBinaryName
	}
	return "caddy"
}
