// Command tokengate is Caddy with its standard modules and the tokengate
// plugin: `tokengate run --config Caddyfile` and every other Caddy command,
// plus the plugin's admin commands, which any Caddy build with the plugin
// has under `caddy tokengate …` and this binary also takes without the
// word: `tokengate user create …`.
package main

import (
	"os"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
	"github.com/tokengate/tokengate/admin/cli"
)

func main() {
	// Help and messages say "tokengate …", the command people typed.
	caddy.CustomBinaryName = "tokengate"
	if cli.RootHelp(os.Stdout, os.Args) {
		return
	}
	os.Args = cli.ShortForm(os.Args)
	caddycmd.Main()
}
