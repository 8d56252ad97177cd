// Package tokengate is the plugin's root: importing it registers every
// tokengate module and Caddyfile directive with Caddy, which is what
// `xcaddy build --with github.com/tokengate/tokengate` does.
package tokengate

import (
	// The app and the handlers.
	_ "github.com/tokengate/tokengate/module/tokengate"
	// The admin API: on Caddy's admin endpoint and as a handler.
	_ "github.com/tokengate/tokengate/admin"
	// The command line client of the admin API: tokengate org|user|… .
	_ "github.com/tokengate/tokengate/admin/cli"
	// The Caddyfile global option and directives.
	_ "github.com/tokengate/tokengate/caddyfile"
)
