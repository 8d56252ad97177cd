package caddyfile

import (
	"strings"

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

// parseHandler sets up the tokengate handler. Syntax:
//
//	tokengate api {
//		scope account|organization
//		account <placeholder>
//		types programmatic ui
//		forward_credentials
//		identity_headers user-id user-type [user-name] [org-id] [account-id] [role] [token-id] | all
//	}
//
//	tokengate ui {
//		forward_credentials
//		identity_headers ...
//	}
//
// identity_headers chooses which identity headers go upstream, named by
// what follows the header prefix (user-id is X-Tokengate-User-Id), in any
// letter case; user-id and user-type are required. Left out, all seven are
// sent. Whatever the choice, every incoming header with the prefix is still
// removed and every {http.auth.*} placeholder is still set: a header not
// chosen is simply not sent.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := h.Dispenser
	d.Next() // the directive's name
	if !d.NextArg() {
		return nil, d.Err("tokengate: expected a mode, api or ui")
	}
	handler := &tokengate.Handler{Mode: d.Val()}
	if handler.Mode != tokengate.ModeAPI && handler.Mode != tokengate.ModeUI {
		return nil, d.Errf("tokengate: unknown mode %q, want api or ui", handler.Mode)
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := subOptions{}
	for d.NextBlock(0) {
		name, err := seen.first(d, "tokengate")
		if err != nil {
			return nil, err
		}
		if handler.Mode == tokengate.ModeUI && name != "forward_credentials" && name != "identity_headers" {
			return nil, d.Errf("tokengate ui: unknown sub-directive %q (ui routes take only forward_credentials and identity_headers)", name)
		}
		switch name {
		case "scope":
			handler.Scope, err = oneArg(d)
			if err == nil && handler.Scope != tokengate.ScopeAccount && handler.Scope != tokengate.ScopeOrganization {
				err = d.Errf("scope: %q is not account or organization", handler.Scope)
			}
		case "account":
			handler.Account, err = oneArg(d)
		case "types":
			handler.Types = d.RemainingArgs()
			if len(handler.Types) == 0 {
				return nil, d.ArgErr()
			}
			for _, t := range handler.Types {
				if t != "programmatic" && t != "ui" {
					return nil, d.Errf("types: %q is not programmatic or ui", t)
				}
			}
		case "forward_credentials":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			handler.ForwardCredentials = true
		case "identity_headers":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return nil, d.Errf("identity_headers: expected the headers to send (user-id user-type at least), or all")
			}
			if err := tokengate.ParseIdentityHeaders(names); err != nil {
				return nil, d.Errf("identity_headers: %v", err)
			}
			for i, n := range names {
				names[i] = strings.ToLower(n)
			}
			handler.IdentityHeaders = names
		default:
			return nil, d.Errf("tokengate: unknown sub-directive %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if handler.Scope == tokengate.ScopeOrganization && handler.Account != "" {
		return nil, d.Err("tokengate: account is for account-scoped routes, not scope organization")
	}
	return handler, nil
}
