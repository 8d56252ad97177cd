package tokengate_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/module/store"
)

// rateLimitCaddyfile has two placeholders of its own, {{DIAL}} in the etcd
// block and {{CACHE}} among the app's options, for reloads that change
// them: rateLimitConfig fills them.
const rateLimitCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
			{{DIAL}}
		}
		{{CACHE}}
	}
}

http://127.0.0.1:{{PORT2}} {
	respond 404
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
	route /ui/* {
		tokengate ui
		reverse_proxy {{UPSTREAM}}
	}
	route /limits {
		tokengate api
		respond "{http.auth.ratelimit.limit} {http.auth.ratelimit.window} {http.auth.ratelimit.remaining} {http.auth.ratelimit.reset}"
	}
}
`

// rateLimitConfig is rateLimitCaddyfile with an etcd dial option and app
// options (either may be empty).
func rateLimitConfig(dial, cache string) string {
	return strings.NewReplacer("{{DIAL}}", dial, "{{CACHE}}", cache).Replace(rateLimitCaddyfile)
}

// rateFields reads the RateLimit-Policy and RateLimit fields of an answer:
// quota, window, remaining and reset, or ok false when either is missing.
func rateFields(t *testing.T, h http.Header) (q, w, r, reset int64, ok bool) {
	t.Helper()
	policy, limit := h.Get("RateLimit-Policy"), h.Get("RateLimit")
	if policy == "" && limit == "" {
		return 0, 0, 0, 0, false
	}
	params := func(v, name string) map[string]int64 {
		parts := strings.Split(v, ";")
		if parts[0] != `"user"` {
			t.Fatalf("%s: %q does not name the policy \"user\"", name, v)
		}
		out := map[string]int64{}
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(p, "=")
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, v, err)
			}
			out[k] = n
		}
		return out
	}
	pp, lp := params(policy, "RateLimit-Policy"), params(limit, "RateLimit")
	return pp["q"], pp["w"], lp["r"], lp["t"], true
}

func TestRateLimit(t *testing.T) {
	g := startGatewayWith(t, rateLimitConfig("", ""))
	// A day's window: the test does not straddle a window's end (unless
	// it runs across midnight UTC).
	limited, tok := g.user(func(u *store.User) { u.RateLimit = &store.RateLimit{Requests: 3, Window: "24h"} })
	_, free := g.user(nil)

	// A refused request does not use the budget.
	g.do("GET", "/api/x?accountId="+g.act2, tok).want(t, http.StatusForbidden, "account_forbidden")
	for i := range 3 {
		r := g.do("GET", "/api/x", tok)
		r.want(t, http.StatusOK, "")
		q, w, rem, reset, ok := rateFields(t, r.header)
		if !ok || q != 3 || w != 86400 || rem != int64(2-i) || reset < 1 || reset > 86400 {
			t.Fatalf("request %d: RateLimit fields %d %d %d %d %v", i+1, q, w, rem, reset, ok)
		}
		if v := r.upstream(t, "X-Tokengate-User-Id"); v != limited.ID {
			t.Fatalf("request %d reached the upstream as %q", i+1, v)
		}
	}
	over := g.do("GET", "/api/x", tok)
	over.want(t, http.StatusTooManyRequests, "rate_limited")
	q, w, rem, reset, ok := rateFields(t, over.header)
	if !ok || q != 3 || w != 86400 || rem != 0 {
		t.Fatalf("429: RateLimit fields %d %d %d %d %v", q, w, rem, reset, ok)
	}
	if ra, err := strconv.ParseInt(over.header.Get("Retry-After"), 10, 64); err != nil || ra != reset || ra < 1 {
		t.Fatalf("Retry-After %q, want the reset %d", over.header.Get("Retry-After"), reset)
	}
	if len(over.echo.Header) != 0 {
		t.Fatal("a request over the limit reached the upstream")
	}
	// Another user is not held back, and carries no RateLimit fields.
	for range 5 {
		r := g.do("GET", "/api/x", free)
		r.want(t, http.StatusOK, "")
		if _, _, _, _, ok := rateFields(t, r.header); ok {
			t.Fatal("RateLimit fields for a user without a rate_limit")
		}
	}

	// A raised limit takes effect at once; the window's count stays.
	if _, err := g.writer.UpdateUser(g.ctx(), g.org, limited.ID, func(u *store.User) error {
		u.RateLimit = &store.RateLimit{Requests: 5, Window: "24h"}
		return nil
	}, operator); err != nil {
		t.Fatal(err)
	}
	g.synced()
	r := g.do("GET", "/limits", tok)
	r.want(t, http.StatusOK, "")
	fields := strings.Fields(string(r.body))
	// 3 admitted before, this one the 4th of 5.
	if len(fields) != 4 || fields[0] != "5" || fields[1] != "86400" || fields[2] != "1" {
		t.Fatalf("placeholders after raising the limit to 5: %q", r.body)
	}
	if n, err := strconv.ParseInt(fields[3], 10, 64); err != nil || n < 1 || n > 86400 {
		t.Fatalf("reset placeholder %q", fields[3])
	}
	g.do("GET", "/api/x", tok).want(t, http.StatusOK, "")
	g.do("GET", "/api/x", tok).want(t, http.StatusTooManyRequests, "rate_limited")
	// Lowered again, to 2: what was admitted stays admitted; nothing
	// more in this window.
	if _, err := g.writer.UpdateUser(g.ctx(), g.org, limited.ID, func(u *store.User) error {
		u.RateLimit = &store.RateLimit{Requests: 2, Window: "24h"}
		return nil
	}, operator); err != nil {
		t.Fatal(err)
	}
	g.synced()
	g.do("GET", "/api/x", tok).want(t, http.StatusTooManyRequests, "rate_limited")

	// Cleared: no limit, no fields.
	if _, err := g.writer.UpdateUser(g.ctx(), g.org, limited.ID, func(u *store.User) error {
		u.RateLimit = nil
		return nil
	}, operator); err != nil {
		t.Fatal(err)
	}
	g.synced()
	for range 5 {
		r := g.do("GET", "/api/x", tok)
		r.want(t, http.StatusOK, "")
		if _, _, _, _, ok := rateFields(t, r.header); ok {
			t.Fatal("RateLimit fields after the limit was cleared")
		}
	}
}

// TestRateLimitOnUIRoutes: a UI user's personal tokens count against the
// user's budget on UI routes too.
func TestRateLimitOnUIRoutes(t *testing.T) {
	g := startGatewayWith(t, rateLimitConfig("", ""))
	_, tok := g.user(func(u *store.User) {
		u.Type = store.TypeUI
		u.RateLimit = &store.RateLimit{Requests: 2, Window: "24h"}
	})
	g.do("GET", "/ui/x", tok).want(t, http.StatusOK, "")
	g.do("GET", "/api/x", tok).want(t, http.StatusOK, "")
	r := g.do("GET", "/ui/x", tok)
	r.want(t, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Without a token the UI route passes untagged, as ever.
	g.do("GET", "/ui/x", "").want(t, http.StatusOK, "")
}

// TestRateLimitSurvivesReloads: a reload, even one that reconnects to
// etcd, does not hand out a fresh budget.
func TestRateLimitSurvivesReloads(t *testing.T) {
	g := startGatewayWith(t, rateLimitConfig("", ""))
	_, tok := g.user(func(u *store.User) { u.RateLimit = &store.RateLimit{Requests: 3, Window: "24h"} })
	for range 3 {
		g.do("GET", "/api/x", tok).want(t, http.StatusOK, "")
	}
	g.do("GET", "/api/x", tok).want(t, http.StatusTooManyRequests, "rate_limited")
	vars := map[string]string{"ETCD": g.etcd.Endpoint(), "PORT": strings.TrimPrefix(g.base, "http://127.0.0.1:"),
		"PORT2": strings.TrimPrefix(g.lenient, "http://127.0.0.1:"), "UPSTREAM": g.upstreamAddr}
	for _, change := range []struct{ name, dial, cache string }{
		{"cache settings", "", "cache_ttl 4m"},
		{"a new etcd connection", "dial_timeout 4s", "cache_ttl 4m"},
		{"back to the first", "", ""},
	} {
		cfg := caddytest.Adapt(t, rateLimitConfig(change.dial, change.cache), vars)
		if err := caddy.Load(cfg, true); err != nil {
			t.Fatalf("reload (%s): %v", change.name, err)
		}
		g.do("GET", "/api/x", tok).want(t, http.StatusTooManyRequests, "rate_limited")
	}
}
