package tokengate_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

const handleErrorsCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
	handle_errors 401 403 {
		header Content-Type "text/plain; charset=utf-8"
		respond "styled {err.status_code} {http.vars.tokengate_error_code}: {err.message}"
	}
	handle_errors 429 503 {
		header Content-Type "application/json"
		respond "{http.vars.tokengate_error_body}"
	}
}

http://127.0.0.1:{{PORT2}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}
`

// TestRefusalsThroughHandleErrors: on a site with handle_errors, refusals
// go through the operator's error routes as Caddy's own handlers' do —
// status, message and tokengate's code as placeholders, the contract's
// JSON body at hand, WWW-Authenticate and Retry-After kept; a site without
// them answers the contract's JSON as always.
func TestRefusalsThroughHandleErrors(t *testing.T) {
	g := startGatewayWith(t, handleErrorsCaddyfile)
	_, viewer := g.user(func(u *store.User) { u.Role = store.RoleViewer })
	_, limited := g.user(func(u *store.User) { u.RateLimit = &store.RateLimit{Requests: 1, Window: "1h"} })
	g.synced()
	get := func(base, method, tok string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/api/x?accountId="+g.act1, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}

	res, body := get(g.base, "GET", "")
	if res.StatusCode != 401 || !strings.HasPrefix(body, "styled 401 missing_token: ") ||
		res.Header.Get("WWW-Authenticate") != `Bearer realm="tokengate"` {
		t.Errorf("no token: %d %q %v", res.StatusCode, body, res.Header)
	}
	res, body = get(g.base, "POST", viewer)
	if res.StatusCode != 403 || !strings.HasPrefix(body, "styled 403 role_forbidden: ") ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("a viewer's POST: %d %q %v", res.StatusCode, body, res.Header)
	}
	if res, body = get(g.base, "GET", limited); res.StatusCode != 200 {
		t.Fatalf("the first request within the limit: %d %s", res.StatusCode, body)
	}
	res, body = get(g.base, "GET", limited)
	if res.StatusCode != 429 || !strings.HasPrefix(body, `{"error":{"code":"rate_limited","message":`) ||
		res.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %q %v", res.StatusCode, body, res.Header)
	}

	// The other site has no error routes: the contract's JSON.
	g.base = g.lenient
	g.do("GET", "/api/x?accountId="+g.act1, "").want(t, 401, "missing_token")
	g.do("POST", "/api/x?accountId="+g.act1, viewer).want(t, 403, "role_forbidden")
}
