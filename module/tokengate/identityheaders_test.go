package tokengate_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/tokengate"
)

// identityHeadersCaddyfile has one route per choice of identity_headers.
const identityHeadersCaddyfile = `{
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
	route /all/* {
		tokengate api {
			identity_headers all
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /min/* {
		tokengate api {
			identity_headers user-id user-type
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /some/* {
		tokengate api {
			identity_headers User-Id USER-TYPE role account-id
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /org/* {
		tokengate api {
			scope organization
			identity_headers user-id user-type account-id
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /ui/* {
		tokengate ui {
			identity_headers user-id user-type
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /whoami {
		tokengate api {
			identity_headers user-id user-type
		}
		respond "{http.auth.user.type} {http.auth.user.id} {http.auth.user.name} {http.auth.user.org} {http.auth.user.account} {http.auth.user.role} {http.auth.token.id}"
	}
}
`

// forgedIdentity is every identity header, as a client impersonating an
// organization admin of another org would send them.
var forgedIdentity = []string{
	"X-Tokengate-User-Id", "u-000000000000",
	"X-Tokengate-User-Type", "ui",
	"X-Tokengate-User-Name", "root",
	"X-Tokengate-Org-Id", "globex",
	"X-Tokengate-Account-Id", "act-00000000",
	"x-tokengate-role", "admin",
	"X-TOKENGATE-TOKEN-ID", "tok-000000000000",
}

// identitySent is what the upstream got of each identity header: the
// names it saw with the default prefix, and their values.
func identitySent(t *testing.T, r response) map[string]string {
	t.Helper()
	sent := map[string]string{}
	for name, vals := range r.echo.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-tokengate-") {
			if len(vals) != 1 {
				t.Fatalf("upstream got %d values of %s: %q", len(vals), name, vals)
			}
			sent[name] = vals[0]
		}
	}
	return sent
}

// wantSent fails unless the upstream got exactly these identity headers,
// with these values.
func wantSent(t *testing.T, r response, want map[string]string) {
	t.Helper()
	r.want(t, 200, "")
	got := identitySent(t, r)
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s upstream = %q, want %q", name, got[name], v)
		}
	}
	for name, v := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %q reached the upstream; not chosen", name, v)
		}
	}
}

// TestIdentityHeaders: identity_headers chooses which identity headers go
// upstream (all seven by default), in both modes; a client's copy of any
// identity header, chosen or not, never reaches the upstream, and every
// placeholder is set whatever the choice.
func TestIdentityHeaders(t *testing.T) {
	g := startGatewayWith(t, identityHeadersCaddyfile)
	prog, progTok := g.user(nil)
	ui, uiTok := g.user(func(u *store.User) { u.Type = store.TypeUI })
	orgUser, orgTok := g.user(func(u *store.User) {
		u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{g.act1, g.act2}
	})
	tokenID := func(u *store.User) string {
		t.Helper()
		toks, err := g.writer.ListTokens(g.ctx(), g.org, u.ID)
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens of %s: %v, %v", u.ID, toks, err)
		}
		return toks[0].ID
	}
	all := map[string]string{
		"X-Tokengate-User-Id":    prog.ID,
		"X-Tokengate-User-Type":  store.TypeProgrammatic,
		"X-Tokengate-User-Name":  prog.Name,
		"X-Tokengate-Org-Id":     g.org,
		"X-Tokengate-Account-Id": g.act1,
		"X-Tokengate-Role":       store.RoleEditor,
		"X-Tokengate-Token-Id":   tokenID(prog),
	}
	minimal := map[string]string{
		"X-Tokengate-User-Id":   prog.ID,
		"X-Tokengate-User-Type": store.TypeProgrammatic,
	}

	t.Run("default sends all seven", func(t *testing.T) {
		wantSent(t, g.do("GET", "/api/x", progTok), all)
		wantSent(t, g.do("GET", "/api/x", progTok, forgedIdentity...), all)
	})

	t.Run("all sends all seven", func(t *testing.T) {
		wantSent(t, g.do("GET", "/all/x", progTok, forgedIdentity...), all)
	})

	t.Run("the minimal set sends only user-id and user-type", func(t *testing.T) {
		wantSent(t, g.do("GET", "/min/x", progTok), minimal)
		// Forged copies of the headers not chosen are removed all the same.
		wantSent(t, g.do("GET", "/min/x", progTok, forgedIdentity...), minimal)
		wantSent(t, g.do("GET", "/min/x", progTok, "X-Tokengate-Role", "admin", "X_Tokengate_Role", "admin"), minimal)
	})

	t.Run("names in any case", func(t *testing.T) {
		want := map[string]string{
			"X-Tokengate-User-Id":    prog.ID,
			"X-Tokengate-User-Type":  store.TypeProgrammatic,
			"X-Tokengate-Role":       store.RoleEditor,
			"X-Tokengate-Account-Id": g.act1,
		}
		wantSent(t, g.do("GET", "/some/x", progTok, forgedIdentity...), want)
	})

	t.Run("account-id only with a target account", func(t *testing.T) {
		orgMin := map[string]string{"X-Tokengate-User-Id": orgUser.ID, "X-Tokengate-User-Type": store.TypeProgrammatic}
		wantSent(t, g.do("GET", "/org/x", orgTok, forgedIdentity...), orgMin)
		orgMin["X-Tokengate-Account-Id"] = g.act2
		wantSent(t, g.do("GET", "/org/x?accountId="+g.act2, orgTok, forgedIdentity...), orgMin)
	})

	t.Run("the route still judges the request", func(t *testing.T) {
		g.do("GET", "/min/x", "").want(t, 401, "missing_token")
		g.do("GET", "/min/x?accountId="+g.act2, progTok).want(t, 403, "account_forbidden")
	})

	t.Run("ui mode", func(t *testing.T) {
		wantSent(t, g.do("GET", "/ui/x", uiTok, forgedIdentity...), map[string]string{
			"X-Tokengate-User-Id":   ui.ID,
			"X-Tokengate-User-Type": store.TypeUI,
		})
		wantSent(t, g.do("GET", "/ui/x", "", forgedIdentity...), map[string]string{})
		g.do("GET", "/ui/x", progTok).want(t, 403, "programmatic_ui_forbidden")
	})

	t.Run("placeholders are all set", func(t *testing.T) {
		r := g.do("GET", "/whoami", progTok)
		want := strings.Join([]string{store.TypeProgrammatic, prog.ID, prog.Name, g.org, g.act1, store.RoleEditor, tokenID(prog)}, " ")
		if r.status != 200 || string(r.body) != want {
			t.Fatalf("whoami = %d %q, want %q", r.status, r.body, want)
		}
	})
}

// identityHeadersJSON is a Caddy JSON config with one tokengate route whose
// handler is {{HANDLER}}, on the etcd at {{ETCD}} (prefix /tg).
const identityHeadersJSON = `{
	"admin": {"disabled": true},
	"logging": {"logs": {"default": {"level": "ERROR"}}},
	"apps": {
		"tokengate": {"etcd": {"endpoints": ["{{ETCD}}"], "prefix": "/tg"}},
		"http": {"servers": {"gw": {
			"listen": ["127.0.0.1:{{PORT}}"],
			"routes": [{"handle": [
				{{HANDLER}},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "{{UPSTREAM}}"}]}
			]}]
		}}}
	}
}`

// TestIdentityHeadersJSON: the option in Caddy's JSON, where a bad list is
// refused when the config is provisioned, naming what is wrong.
func TestIdentityHeadersJSON(t *testing.T) {
	srv := etcdtest.Start(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(upstream.Close)
	port := caddytest.FreePort(t)
	config := func(handler string) []byte {
		return []byte(strings.NewReplacer("{{ETCD}}", srv.Endpoint(), "{{PORT}}", fmt.Sprint(port),
			"{{UPSTREAM}}", strings.TrimPrefix(upstream.URL, "http://"), "{{HANDLER}}", handler).Replace(identityHeadersJSON))
	}

	bad := []struct {
		name, list, want string
	}{
		{"unknown name", `["user-id", "user-type", "email"]`, `unknown identity header "email"`},
		{"duplicate", `["user-id", "user-type", "role", "Role"]`, `identity header "Role" named more than once`},
		{"empty list", `[]`, "no header named"},
		{"without user-type", `["user-id", "org-id"]`, "user-type is missing"},
		{"without user-id", `["user-type"]`, "user-id is missing"},
		{"all beside another name", `["all", "user-id"]`, `"all" names every identity header and stands alone`},
		{"not a header name", `["user-id", "user-type", "X-Tokengate-Role"]`, `unknown identity header "X-Tokengate-Role"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var cfg caddy.Config
			if err := caddy.StrictUnmarshalJSON(config(`{"handler": "tokengate", "mode": "api", "identity_headers": `+tt.list+`}`), &cfg); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&cfg)
			if err == nil || !strings.Contains(err.Error(), "identity_headers: "+tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}

	if err := caddy.Load(config(`{"handler": "tokengate", "mode": "api", "identity_headers": ["USER-ID", "user-type", "token-id"]}`), true); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
	t.Cleanup(func() { caddy.Stop() })
	g := &gateway{t: t, etcd: srv, writer: store.New(srv.Client(), "/tg"), org: "acme", base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if _, err := g.writer.CreateOrg(g.ctx(), store.Org{ID: g.org, Name: g.org}, operator); err != nil {
		t.Fatal(err)
	}
	g.act1 = g.account(g.org)
	u, tok := g.user(nil)
	toks, err := g.writer.ListTokens(g.ctx(), g.org, u.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v, %v", toks, err)
	}
	wantSent(t, g.do("GET", "/x", tok, forgedIdentity...), map[string]string{
		"X-Tokengate-User-Id":   u.ID,
		"X-Tokengate-User-Type": store.TypeProgrammatic,
		"X-Tokengate-Token-Id":  toks[0].ID,
	})
}

// TestIdentityHeadersRule: the one rule the Caddyfile and the JSON config
// are checked by (Handler.Validate).
func TestIdentityHeadersRule(t *testing.T) {
	check := func(names []string) error {
		return (&tokengate.Handler{Mode: tokengate.ModeAPI, IdentityHeaders: names}).Validate()
	}
	good := [][]string{
		{"all"},
		{"ALL"},
		{"user-id", "user-type"},
		{"user-type", "user-id"},
		{"User-Id", "USER-TYPE", "user-name", "org-id", "account-id", "role", "token-id"},
	}
	for _, names := range good {
		if err := check(names); err != nil {
			t.Errorf("%q refused: %v", names, err)
		}
	}
	bad := []struct {
		names []string
		want  string
	}{
		{[]string{}, "no header named"},
		{[]string{"user-id", "user-type", "user"}, `unknown identity header "user"`},
		{[]string{"user-id", "user-type", ""}, `unknown identity header ""`},
		{[]string{"user-id", "user-type", "role", "role"}, `"role" named more than once`},
		{[]string{"user-id", "user-type", "USER-ID"}, `"USER-ID" named more than once`},
		{[]string{"user-type", "role"}, "user-id is missing"},
		{[]string{"user-id"}, "user-type is missing"},
		{[]string{"user-id", "user-type", "all"}, `"all" names every identity header`},
	}
	for _, tt := range bad {
		err := check(tt.names)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tt.names, err, tt.want)
		}
	}
	// The message for an unknown name lists the choices.
	err := check([]string{"user-id", "user-type", "email"})
	for _, name := range []tokengate.IdentityHeader{tokengate.HeaderUserID, tokengate.HeaderTokenID} {
		if err == nil || !strings.Contains(err.Error(), string(name)) {
			t.Errorf("error %v does not list %s", err, name)
		}
	}
}
