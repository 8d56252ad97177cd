package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// Caddy's standard modules (reverse_proxy, forward_auth, basic_auth)
	// and tokengate's, as the tokengate binary has them.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate/caddyfile"
	"github.com/tokengate/tokengate/module/tokengate"
)

// caddyfileTemplate is the one config serving every front end. Nothing
// logs per request (no access logs anywhere), so logging costs no front end
// more than another; only errors reach stderr.
const caddyfileTemplate = `{
	admin off
	persist_config off
	auto_https off
	default_bind 127.0.0.1
	storage file_system {{DIR}}/caddy
	log {
		level ERROR
	}
	tokengate {
		embedded_dir {{DIR}}/etcd
	}
}

# (a) no authentication
http://127.0.0.1:{{PORT_a}} {
	reverse_proxy {{UPSTREAM}}
}

# (b) tokengate, valid cached tokens
http://127.0.0.1:{{PORT_b}} {
	route {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}

# (c) forward_auth to a token service
http://127.0.0.1:{{PORT_c}} {
	forward_auth {{AUTH}} {
		uri /check
		copy_headers X-User-Id>` + identityHeader + `
	}
	reverse_proxy {{UPSTREAM}}
}

# (d) basic_auth, bcrypt
http://127.0.0.1:{{PORT_d}} {
	basic_auth {
		{{BASIC_USER}} {{BASIC_HASH}}
	}
	reverse_proxy {{UPSTREAM}}
}

# (e) tokengate, unknown tokens
http://127.0.0.1:{{PORT_e}} {
	route {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}

# (f) tokengate, malformed tokens
http://127.0.0.1:{{PORT_f}} {
	route {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}

# (g) no authentication, but the identity headers (b) adds, set statically
# in one step: what tagging costs Caddy's proxy and the upstream, apart
# from tokengate's own work
http://127.0.0.1:{{PORT_g}} {
	reverse_proxy {{UPSTREAM}} {
		header_up X-Tokengate-User-Id u-0123456789ab
		header_up X-Tokengate-User-Type programmatic
		header_up X-Tokengate-User-Name bench-123
		header_up X-Tokengate-Org-Id bench
		header_up X-Tokengate-Account-Id act-01234567
		header_up X-Tokengate-Role viewer
		header_up X-Tokengate-Token-Id tok-0123456789ab
	}
}

# (h) tokengate as (b), sending only the identity headers the contract
# requires
http://127.0.0.1:{{PORT_h}} {
	route {
		tokengate api {
			identity_headers user-id user-type
		}
		reverse_proxy {{UPSTREAM}}
	}
}

# (i) tokengate as (b); the tokens it is sent are those of users with a
# rate_limit (the store says so, not the config)
http://127.0.0.1:{{PORT_i}} {
	route {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}
`

// caddySettings fill the template.
type caddySettings struct {
	dir       string
	ports     map[string]int // by front end key
	upstream  string         // host:port
	auth      string         // host:port of the token service
	basicUser string
	basicHash string
}

func (s caddySettings) caddyfile() string {
	pairs := []string{
		"{{DIR}}", filepath.ToSlash(s.dir),
		"{{UPSTREAM}}", s.upstream,
		"{{AUTH}}", s.auth,
		"{{BASIC_USER}}", s.basicUser,
		"{{BASIC_HASH}}", s.basicHash,
	}
	for key, port := range s.ports {
		pairs = append(pairs, "{{PORT_"+key+"}}", fmt.Sprint(port))
	}
	return strings.NewReplacer(pairs...).Replace(caddyfileTemplate)
}

// startCaddy adapts the Caddyfile in-process, loads it and returns the
// tokengate app it started. Adapter warnings go to warn.
func startCaddy(cf string, warn io.Writer) (*tokengate.App, error) {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		return nil, fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(warn, "caddyfile: line %d: %s\n", w.Line, w.Message)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return nil, fmt.Errorf("loading the Caddy config: %w", err)
	}
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		_ = caddy.Stop()
		return nil, fmt.Errorf("getting the tokengate app: %w", err)
	}
	tg, ok := app.(*tokengate.App)
	if !ok {
		_ = caddy.Stop()
		return nil, fmt.Errorf("tokengate app has unexpected type %T", app)
	}
	return tg, nil
}

// freePorts finds n distinct free loopback ports, holding them all open
// together so none is returned twice. Caddy binds them right after; another
// process taking one in between is possible but unlikely, and fails the
// load loudly.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
