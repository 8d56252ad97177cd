// Command tokengate is Caddy with its standard modules and the tokengate
// plugin: `tokengate run --config Caddyfile` and every other Caddy command.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

func main() {
	caddycmd.Main()
}
