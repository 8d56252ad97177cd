package tokengate_test

import (
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// allowedCIDRsCaddyfile serves the same routes on two servers: {{PORT}}
// trusts no proxy, {{PORT2}} trusts the loopback addresses as proxies (so
// their X-Forwarded-For names the client). Both answer any host, on IPv4
// and IPv6 loopback alike.
const allowedCIDRsCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
	servers :{{PORT2}} {
		trusted_proxies static 127.0.0.1/32 ::1/128
	}
}

http://:{{PORT}}, http://:{{PORT2}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
	route /ui/* {
		tokengate ui
		reverse_proxy {{UPSTREAM}}
	}
}
`

// TestAllowedCIDRs: a user's allowed_cidrs are judged against the client
// address Caddy determines — the peer, or what a trusted proxy says — in
// both modes, before the route's other checks, and a change applies at once.
func TestAllowedCIDRs(t *testing.T) {
	g := startGatewayWith(t, allowedCIDRsCaddyfile)
	port := g.base[strings.LastIndex(g.base, ":"):]
	trusted := *g // behind a trusted proxy on 127.0.0.1 or ::1
	trusted.base = g.lenient
	v6 := *g // from ::1, no trusted proxy
	v6.base = "http://[::1]" + port

	loop, loopTok := g.user(func(u *store.User) { u.AllowedCIDRs = []string{"127.0.0.0/8"} })
	_, tenTok := g.user(func(u *store.User) { u.AllowedCIDRs = []string{"10.0.0.0/8"} })
	_, v6Tok := g.user(func(u *store.User) { u.AllowedCIDRs = []string{"::1/128"} })
	_, uiLoopTok := g.user(func(u *store.User) { u.Type, u.AllowedCIDRs = store.TypeUI, []string{"127.0.0.0/8", "::1/128"} })
	_, uiTenTok := g.user(func(u *store.User) { u.Type, u.AllowedCIDRs = store.TypeUI, []string{"10.0.0.0/8"} })
	open, openTok := g.user(nil)

	t.Run("inside admitted, outside refused", func(t *testing.T) {
		r := g.do("GET", "/api/x", loopTok)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-User-Id") != loop.ID {
			t.Errorf("upstream tags: %v", r.echo.Header)
		}
		g.do("GET", "/api/x", openTok).want(t, 200, "")
		r = g.do("GET", "/api/x", tenTok)
		r.want(t, 403, "ip_forbidden")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate", error="insufficient_scope"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		if !strings.Contains(string(r.body), "127.0.0.1") {
			t.Errorf("the refusal does not name the client address: %s", r.body)
		}
	})

	t.Run("ui mode", func(t *testing.T) {
		g.do("GET", "/ui/home", uiLoopTok).want(t, 200, "")
		g.do("GET", "/ui/home", uiTenTok).want(t, 403, "ip_forbidden")
		g.do("GET", "/ui/home", "").want(t, 200, "")
	})

	t.Run("judged before the route's other checks", func(t *testing.T) {
		g.do("GET", "/ui/home", tenTok).want(t, 403, "ip_forbidden") // not programmatic_ui_forbidden
		g.do("GET", "/api/x?accountId="+g.otherAct, tenTok).want(t, 403, "ip_forbidden")
		g.do("DELETE", "/api/x", tenTok).want(t, 403, "ip_forbidden")
	})

	t.Run("headers from an untrusted peer are ignored", func(t *testing.T) {
		for _, hdr := range [][]string{
			{"X-Forwarded-For", "10.1.2.3"},
			{"X-Forwarded-For", "10.1.2.3, 127.0.0.1"},
			{"X-Real-IP", "10.1.2.3"},
			{"Forwarded", "for=10.1.2.3"},
			{"True-Client-IP", "10.1.2.3"},
			{"X-Client-IP", "10.1.2.3"},
		} {
			if r := g.do("GET", "/api/x", tenTok, hdr...); r.code != "ip_forbidden" {
				t.Errorf("%s: %s from 127.0.0.1 → %d %q", hdr[0], hdr[1], r.status, r.code)
			}
			if r := g.do("GET", "/api/x", loopTok, hdr...); r.status != 200 {
				t.Errorf("%s: %s moved a loopback client out of 127.0.0.0/8: %d %q", hdr[0], hdr[1], r.status, r.code)
			}
		}
	})

	t.Run("a trusted proxy's X-Forwarded-For is honoured", func(t *testing.T) {
		trusted.do("GET", "/api/x", tenTok, "X-Forwarded-For", "10.1.2.3").want(t, 200, "")
		trusted.do("GET", "/api/x", tenTok, "X-Forwarded-For", "10.1.2.3, 127.0.0.1").want(t, 200, "")
		trusted.do("GET", "/api/x", tenTok, "X-Forwarded-For", "::ffff:10.1.2.3").want(t, 200, "")
		trusted.do("GET", "/ui/home", uiTenTok, "X-Forwarded-For", "10.1.2.3").want(t, 200, "")
		// The client the proxy names is judged, not the proxy.
		trusted.do("GET", "/api/x", tenTok).want(t, 403, "ip_forbidden")
		trusted.do("GET", "/api/x", tenTok, "X-Forwarded-For", "192.0.2.1").want(t, 403, "ip_forbidden")
		trusted.do("GET", "/api/x", loopTok, "X-Forwarded-For", "10.1.2.3").want(t, 403, "ip_forbidden")
		// Nothing readable: the peer itself.
		trusted.do("GET", "/api/x", loopTok, "X-Forwarded-For", "unknown").want(t, 200, "")
		// Another header than the configured client_ip_headers is not read.
		trusted.do("GET", "/api/x", tenTok, "X-Real-IP", "10.1.2.3").want(t, 403, "ip_forbidden")
	})

	t.Run("IPv6 loopback", func(t *testing.T) {
		v6.do("GET", "/api/x", v6Tok).want(t, 200, "")
		v6.do("GET", "/ui/home", uiLoopTok).want(t, 200, "")
		v6.do("GET", "/api/x", loopTok).want(t, 403, "ip_forbidden") // ::1 is not in 127.0.0.0/8
		g.do("GET", "/api/x", v6Tok).want(t, 403, "ip_forbidden")    // nor 127.0.0.1 in ::1/128
		v6.do("GET", "/api/x", v6Tok, "X-Forwarded-For", "10.1.2.3").want(t, 200, "")
		v6trusted := trusted
		v6trusted.base = strings.Replace(g.lenient, "127.0.0.1", "[::1]", 1)
		v6trusted.do("GET", "/api/x", tenTok, "X-Forwarded-For", "10.1.2.3").want(t, 200, "")
		v6trusted.do("GET", "/api/x", v6Tok, "X-Forwarded-For", "10.1.2.3").want(t, 403, "ip_forbidden")
	})

	t.Run("a change applies at once", func(t *testing.T) {
		setCIDRs := func(list []string) {
			t.Helper()
			if _, err := g.writer.UpdateUser(g.ctx(), g.org, open.ID, func(u *store.User) error {
				u.AllowedCIDRs = list
				return nil
			}, operator); err != nil {
				t.Fatal(err)
			}
			g.synced()
		}
		g.do("GET", "/api/x", openTok).want(t, 200, "") // cached
		setCIDRs([]string{"10.0.0.0/8"})
		g.do("GET", "/api/x", openTok).want(t, 403, "ip_forbidden")
		setCIDRs([]string{"10.0.0.0/8", "127.0.0.1/32"})
		g.do("GET", "/api/x", openTok).want(t, 200, "")
		setCIDRs(nil)
		g.do("GET", "/api/x", openTok).want(t, 200, "")
		v6.do("GET", "/api/x", openTok).want(t, 200, "")
	})
}
