package tokengate

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/tokengate/module/blockopts"
	"github.com/tokengate/tokengate/module/etcdconn"
)

// UnmarshalCaddyfile sets up the handler from the tokengate directive.
// Syntax:
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
//
// Each line is checked by Validate as it is read, so a mistake is reported
// with the line that makes it.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if !d.NextArg() {
		return d.Err("tokengate: expected a mode, api or ui")
	}
	h.Mode = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if err := h.Validate(); err != nil {
		return d.Errf("tokengate: %v", err)
	}
	seen := blockopts.Seen{}
	for d.NextBlock(0) {
		name, err := seen.First(d, "tokengate")
		if err != nil {
			return err
		}
		switch name {
		case "scope":
			h.Scope, err = blockopts.OneArg(d)
		case "account":
			h.Account, err = blockopts.OneArg(d)
		case "types":
			h.Types = d.RemainingArgs()
			if len(h.Types) == 0 {
				return d.ArgErr()
			}
		case "forward_credentials":
			err = blockopts.Flag(d)
			h.ForwardCredentials = true
		case "identity_headers":
			// Never nil, so that naming none is the error it is.
			h.IdentityHeaders = append([]string{}, d.RemainingArgs()...)
		default:
			return d.Errf("tokengate: unknown sub-directive %q", name)
		}
		if err != nil {
			return err
		}
		if err := h.Validate(); err != nil {
			return d.Errf("tokengate: %v", err)
		}
	}
	// Checked as written, so errors quote the operator's spelling; kept
	// in one letter case, so configs compare equal.
	for i, n := range h.IdentityHeaders {
		h.IdentityHeaders[i] = strings.ToLower(n)
	}
	return nil
}

// UnmarshalCaddyfile sets up the app from the tokengate global option.
// Syntax:
//
//	tokengate {
//		etcd {
//			...  (see etcdconn.Config)
//		}
//		embedded_dir <dir>
//		cache_entries <n>
//		cache_ttl <duration>
//		negative_ttl <duration>
//		audit_retention <duration>
//		usage_retention <duration>
//		max_stale <duration>
//		warm_start on|off
//		header_prefix <prefix>
//		report_limit <requests>/<window>
//		webhook_allow_private
//	}
//
// The settings are checked together at the end of the block, as some
// bound others (max_stale at most cache_ttl); the etcd block's files and
// placeholders are checked when the config loads.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option's name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := blockopts.Seen{}
	for d.NextBlock(0) {
		name, err := seen.First(d, "tokengate")
		if err != nil {
			return err
		}
		switch name {
		case "etcd":
			a.Etcd = new(etcdconn.Config)
			err = a.Etcd.UnmarshalCaddyfile(d)
		case "embedded_dir":
			a.EmbeddedDir, err = blockopts.OneArg(d)
		case "header_prefix":
			a.HeaderPrefix, err = blockopts.OneArg(d)
		case "cache_entries":
			var v string
			if v, err = blockopts.OneArg(d); err == nil {
				if a.CacheEntries, err = strconv.Atoi(v); err != nil {
					err = d.Errf("cache_entries: %q is not a number", v)
				}
			}
		case "cache_ttl":
			a.CacheTTL, err = blockopts.Duration(d)
		case "negative_ttl":
			a.NegativeTTL, err = blockopts.Duration(d)
		case "max_stale":
			a.MaxStale, err = blockopts.Duration(d)
		case "report_limit":
			a.ReportLimit, err = blockopts.OneArg(d)
		case "warm_start":
			a.WarmStart, err = blockopts.OneArg(d)
		case "audit_retention":
			a.AuditRetention, err = blockopts.Duration(d)
		case "usage_retention":
			a.UsageRetention, err = blockopts.Duration(d)
		case "webhook_allow_private":
			err = blockopts.Flag(d)
			a.WebhookAllowPrivate = true
		default:
			return d.Errf("tokengate: unknown sub-option %q", name)
		}
		if err != nil {
			return err
		}
	}
	if err := a.checkSettings(); err != nil {
		return d.Errf("tokengate: %v", err)
	}
	return nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
