// Command tokengate is Caddy with its standard modules and the tokengate
// plugin: `tokengate run --config Caddyfile` and every other Caddy command,
// plus the plugin's admin commands, which any Caddy build with the plugin
// has under `caddy tokengate …` and this binary also takes without the
// word: `tokengate user create …`.
package main

import (
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
	"github.com/tokengate/tokengate/admin/cli"
	"github.com/tokengate/tokengate/module/tokengate"
)

func main() {
	// Help and messages say "tokengate …", the command people typed.
	caddy.CustomBinaryName = "tokengate"
	if cli.RootHelp(os.Stdout, os.Args) {
		return
	}
	os.Args = cli.ShortForm(os.Args)
	if len(os.Args) == 2 && os.Args[1] == "version" {
		// Both versions, each named: this binary is two projects.
		_, caddyVersion := caddy.Version()
		fmt.Println("tokengate", tokengate.Version())
		fmt.Println("caddy", caddyVersion)
		return
	}
	caddycmd.Main()
}
