package etcdconn

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/tokengate/module/blockopts"
)

// UnmarshalCaddyfile reads the etcd block of the tokengate global option;
// d is on the word etcd. Syntax:
//
//	etcd {
//		endpoints <url...>
//		prefix <prefix>
//		username <name>
//		password <password>
//		tls_ca <file>
//		tls_cert <file>
//		tls_key <file>
//		dial_timeout <duration>
//	}
//
// Values may hold placeholders such as {env.ETCD_PASSWORD}; they are
// checked with their placeholders replaced when the config loads.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := blockopts.Seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name, err := seen.First(d, "etcd")
		if err != nil {
			return err
		}
		switch name {
		case "endpoints":
			c.Endpoints = d.RemainingArgs()
			if len(c.Endpoints) == 0 {
				return d.ArgErr()
			}
		case "prefix":
			c.Prefix, err = blockopts.OneArg(d)
		case "username":
			c.Username, err = blockopts.OneArg(d)
		case "password":
			c.Password, err = blockopts.OneArg(d)
		case "tls_ca":
			c.TLSCA, err = blockopts.OneArg(d)
		case "tls_cert":
			c.TLSCert, err = blockopts.OneArg(d)
		case "tls_key":
			c.TLSKey, err = blockopts.OneArg(d)
		case "dial_timeout":
			c.DialTimeout, err = blockopts.Duration(d)
		default:
			return d.Errf("etcd: unknown sub-option %q", name)
		}
		if err != nil {
			return err
		}
	}
	if len(c.Endpoints) == 0 {
		return d.Errf("etcd: %v", ErrNoEndpoints)
	}
	return nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Config)(nil)
