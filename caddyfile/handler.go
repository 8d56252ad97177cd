package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/module/tokengate"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("tokengate", parseHandler)
	// With the other authentication handlers: before anything that
	// rewrites, routes or answers the request.
	httpcaddyfile.RegisterDirectiveOrder("tokengate", httpcaddyfile.After, "forward_auth")
}

// parseHandler reads the tokengate directive; the handler parses its own
// block (tokengate.Handler.UnmarshalCaddyfile gives the syntax).
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(tokengate.Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}
