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

// parseAdmin reads the tokengate_admin directive; the handler parses its
// own (admin.Handler.UnmarshalCaddyfile gives the syntax).
func parseAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(admin.Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}
