// Command tokengate is Caddy with its standard modules and the tokengate
// plugin: `tokengate run --config Caddyfile` and every other Caddy command.
package main

import (
	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

func main() {
	// Help and messages say "tokengate …", the command people typed.
	caddy.CustomBinaryName = "tokengate"
	caddycmd.Main()
}
