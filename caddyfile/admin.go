package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/admin"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("tokengate_admin", parseAdmin)
	// It answers requests itself, like respond.
	httpcaddyfile.RegisterDirectiveOrder("tokengate_admin", httpcaddyfile.Before, "respond")
}

// parseAdmin sets up the admin API handler. Syntax:
//
//	tokengate_admin
//
// Mount it under a path whose prefix is stripped, e.g. inside
// handle_path /admin/*.
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := h.Dispenser
	d.Next() // the directive's name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	if d.NextBlock(0) {
		return nil, d.Errf("tokengate_admin takes no options, got %q", d.Val())
	}
	return new(admin.Handler), nil
}
