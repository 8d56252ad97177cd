package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// ShortForm lets the tokengate binary take the admin commands without the
// word tokengate: given os.Args, it returns them with the word put back
// for caddycmd.Main, so `tokengate user create …` runs `tokengate tokengate
// user create …` (and `tokengate help user` is the help of `tokengate
// tokengate user`). Help and messages then show the short form. Names that
// are a Caddy command of their own are left alone.
func ShortForm(args []string) []string {
	shortForm = true
	switch {
	case len(args) > 1 && isAdminCommand(args[1]):
		return slices.Concat(args[:1], []string{commandName}, args[1:])
	case len(args) > 2 && args[1] == "help" && isAdminCommand(args[2]):
		return slices.Concat(args[:2], []string{commandName}, args[2:])
	}
	return args
}

func isAdminCommand(name string) bool {
	if _, caddys := caddycmd.Commands()[name]; caddys {
		return false
	}
	return slices.Contains(resourceNames(), name)
}

// RootHelp writes the tokengate binary's own help to w when args (os.Args)
// ask for it (no command, help, -h or --help) and reports whether it did.
// It replaces Caddy's, which lists commands alphabetically and points at
// Caddy's docs: here the admin commands come first, then where they are
// documented, then Caddy's commands.
func RootHelp(w io.Writer, args []string) bool {
	if len(args) > 2 || (len(args) == 2 && !slices.Contains([]string{"help", "-h", "--help"}, args[1])) {
		return false
	}
	bin := rootName()
	var b strings.Builder
	fmt.Fprintf(&b, `%[1]s is Caddy with the tokengate plugin: an auth gateway that verifies API tokens
in front of an existing HTTP API, and the commands that manage its organizations,
users, tokens and policies.

Documentation: %[2]s

Usage:
  %[1]s <command> [flags]

Admin commands (in any Caddy build with the plugin: "caddy %[3]s <command>";
"%[1]s %[3]s <command>" works here too):
`, bin, docsURL, commandName)
	writeCommandList(&b, resourceShorts())
	fmt.Fprintf(&b, `
They print the admin API's JSON answer. They talk to Caddy's admin endpoint
(--address, default localhost:2019), or to a tokengate_admin mount (--url, with
the admin's token in $%s). Exit status: 0 on success, 1 on any failure.

Caddy's commands, as in Caddy (%[2]s run --config Caddyfile starts the gateway):
`, tokenEnv, bin)
	writeCommandList(&b, caddyShorts())
	fmt.Fprintf(&b, `
Flags:
  -h, --help      help for %[1]s
  -v, --version   version for %[1]s

Use "%[1]s <command> --help" for more information about a command.
`, bin)
	io.WriteString(w, b.String())
	return true
}

type commandShort struct{ name, short string }

func resourceShorts() []commandShort {
	out := make([]commandShort, len(resources), len(resources)+1)
	for i, r := range resources {
		out[i] = commandShort{r.name, r.short}
	}
	return append(out, commandShort{statusAction.name, statusAction.short})
}

// caddyShorts lists Caddy's commands, sorted, without this plugin's.
func caddyShorts() []commandShort {
	var out []commandShort
	for name, c := range caddycmd.Commands() {
		if name != commandName {
			out = append(out, commandShort{name, c.Short})
		}
	}
	// caddycmd registers these only when it builds its root command,
	// which is after this help is written; cobra adds help.
	for _, c := range []commandShort{
		{"completion", "Generate completion script"},
		{"manpage", "Generates the manual pages for Caddy commands"},
		{"help", "Help about any command"},
	} {
		if !slices.ContainsFunc(out, func(o commandShort) bool { return o.name == c.name }) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b commandShort) int { return strings.Compare(a.name, b.name) })
	return out
}

func writeCommandList(b *strings.Builder, cmds []commandShort) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(b, "  %-*s  %s\n", width, c.name, c.short)
	}
}
