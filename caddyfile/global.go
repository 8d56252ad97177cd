package caddyfile

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/report"
	"github.com/tokengate/tokengate/module/tokengate"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tokengate", parseGlobalOption)
}

// parseGlobalOption sets up the tokengate app. Syntax:
//
//	tokengate {
//		etcd {
//			endpoints <url...>
//			prefix <prefix>
//			username <name>
//			password <password>
//			tls_ca <file>
//			tls_cert <file>
//			tls_key <file>
//			dial_timeout <duration>
//		}
//		embedded_dir <dir>
//		cache_entries <n>
//		cache_ttl <duration>
//		negative_ttl <duration>
//		audit_retention <duration>
//		max_stale <duration>
//		warm_start on|off
//		header_prefix <prefix>
//		report_limit <requests>/<window>
//		webhook_allow_private
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("tokengate global option given more than once")
	}
	app := new(tokengate.App)
	d.Next() // the option's name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := subOptions{}
	for d.NextBlock(0) {
		name, err := seen.first(d, "tokengate")
		if err != nil {
			return nil, err
		}
		switch name {
		case "etcd":
			app.Etcd, err = parseEtcd(d)
		case "embedded_dir":
			app.EmbeddedDir, err = oneArg(d)
		case "header_prefix":
			app.HeaderPrefix, err = oneArg(d)
		case "cache_entries":
			var v string
			if v, err = oneArg(d); err == nil {
				app.CacheEntries, err = strconv.Atoi(v)
				if err != nil || app.CacheEntries < 1 {
					err = d.Errf("cache_entries: %q is not a positive number", v)
				}
			}
		case "cache_ttl":
			app.CacheTTL, err = durationArg(d)
		case "negative_ttl":
			app.NegativeTTL, err = durationArg(d)
		case "max_stale":
			app.MaxStale, err = durationArg(d)
		case "report_limit":
			var v string
			if v, err = oneArg(d); err == nil {
				if _, err = report.ParseLimit(v); err != nil {
					err = d.Errf("report_limit: %v", err)
				}
				app.ReportLimit = v
			}
		case "warm_start":
			app.WarmStart, err = oneArg(d) // the app checks the value
		case "audit_retention":
			app.AuditRetention, err = durationArg(d)
		case "webhook_allow_private":
			if d.NextArg() {
				return nil, d.Errf("webhook_allow_private: takes no argument")
			}
			if d.NextBlock(d.Nesting()) {
				return nil, d.Errf("webhook_allow_private: takes no block")
			}
			app.WebhookAllowPrivate = true
		default:
			return nil, d.Errf("tokengate: unknown sub-option %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "tokengate", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseEtcd(d *caddyfile.Dispenser) (*etcdconn.Config, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	cfg := new(etcdconn.Config)
	seen := subOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name, err := seen.first(d, "etcd")
		if err != nil {
			return nil, err
		}
		switch name {
		case "endpoints":
			cfg.Endpoints = d.RemainingArgs()
			if len(cfg.Endpoints) == 0 {
				return nil, d.ArgErr()
			}
		case "prefix":
			cfg.Prefix, err = oneArg(d)
		case "username":
			cfg.Username, err = oneArg(d)
		case "password":
			cfg.Password, err = oneArg(d)
		case "tls_ca":
			cfg.TLSCA, err = oneArg(d)
		case "tls_cert":
			cfg.TLSCert, err = oneArg(d)
		case "tls_key":
			cfg.TLSKey, err = oneArg(d)
		case "dial_timeout":
			cfg.DialTimeout, err = durationArg(d)
		default:
			return nil, d.Errf("etcd: unknown sub-option %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(cfg.Endpoints) == 0 {
		return nil, d.Err("etcd: endpoints is required (leave out the etcd block to use the embedded etcd)")
	}
	return cfg, nil
}

// subOptions are the sub-options met so far in one block: giving one twice
// is an error naming its line, never a silent override.
type subOptions map[string]bool

// first returns the current sub-option's name, or an error if the block
// already had it.
func (s subOptions) first(d *caddyfile.Dispenser, block string) (string, error) {
	name := d.Val()
	if s[name] {
		return "", d.Errf("%s: %s given more than once", block, name)
	}
	s[name] = true
	return name, nil
}

// oneArg reads exactly one argument of the current sub-option.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s: expected one argument", name)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: expected one argument, got more", name)
	}
	if d.NextBlock(d.Nesting()) {
		return "", d.Errf("%s: takes no block", name)
	}
	return v, nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", name, v)
	}
	return caddy.Duration(dur), nil
}
