package tokengate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate/caddyfile"
	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
	"github.com/tokengate/tokengate/module/tokengate"
)

var operator = store.Actor{ID: "operator", Type: store.ActorOperator}

// gateway is a running Caddy with tokengate in front of an echo upstream,
// on a real etcd, with a second store client to change data as an admin
// on another instance would.
type gateway struct {
	t        *testing.T
	etcd     *etcdtest.Server
	writer   *store.Store
	base     string
	lenient  string // the site letting in "_" and "." header names
	logFile  string
	org      string
	otherOrg string
	act1     string
	act2     string
	otherAct string
	polRead  string
	// upstreamAddr is the echo upstream's host:port, for Caddyfiles.
	upstreamAddr string
}

// echo is what the upstream saw.
type echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Header  map[string][]string `json:"header"`
	RawPath string              `json:"raw_path"`
	Body    string              `json:"body"`
	Trailer map[string][]string `json:"trailer"`
}

const gatewayCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
	log access {
		output file {{LOG}}
		format json
		include http.log.access
	}
	# The second site lets in header names with "_" and "." (Caddy drops
	# them by default), as an operator with a CGI-style upstream might.
	servers :{{PORT2}} {
		expected_underscore_headers X_Account_Id x_account_id X_HTTP_Method_Override X_Tokengate_*
		expected_dot_headers X.Account.Id X.HTTP.Method X.Tokengate.*
	}
}

http://127.0.0.1:{{PORT2}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}

http://127.0.0.1:{{PORT}} {
	log access
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
	route /org/* {
		tokengate api {
			scope organization
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /prog/* {
		tokengate api {
			types programmatic
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /fwd/* {
		tokengate api {
			forward_credentials
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /tenant/* {
		tokengate api {
			account {http.request.header.X-Tenant}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /ui/* {
		tokengate ui
		reverse_proxy {{UPSTREAM}}
	}
	route /whoami {
		tokengate api
		respond "{http.auth.user.type} {http.auth.user.id} {http.auth.user.org} {http.auth.user.account} {http.auth.user.role} {http.auth.token.id}"
	}
}
`

func startGateway(t *testing.T) *gateway {
	t.Helper()
	return startGatewayWith(t, gatewayCaddyfile)
}

// startGatewayWith is startGateway on another Caddyfile, with the same
// placeholders: {{ETCD}}, {{LOG}}, {{UPSTREAM}}, and {{PORT}} and {{PORT2}}
// for the sites base and lenient reach.
func startGatewayWith(t *testing.T, caddyfile string) *gateway {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Header: r.Header, Body: string(body), Trailer: r.Trailer})
	}))
	t.Cleanup(upstream.Close)

	g := &gateway{t: t, etcd: etcdtest.Start(t), org: "acme", otherOrg: "globex"}
	g.writer = store.New(g.etcd.Client(), "/tg")
	g.logFile = filepath.Join(t.TempDir(), "access.log")
	port, port2 := caddytest.FreePort(t), caddytest.FreePort(t)
	g.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	g.lenient = fmt.Sprintf("http://127.0.0.1:%d", port2)
	g.upstreamAddr = strings.TrimPrefix(upstream.URL, "http://")
	caddytest.Load(t, caddyfile, map[string]string{"ETCD": g.etcd.Endpoint(), "LOG": g.logFile,
		"PORT": fmt.Sprint(port), "PORT2": fmt.Sprint(port2), "UPSTREAM": g.upstreamAddr})

	ctx := g.ctx()
	for _, org := range []string{g.org, g.otherOrg} {
		if _, err := g.writer.CreateOrg(ctx, store.Org{ID: org, Name: org}, operator); err != nil {
			t.Fatal(err)
		}
	}
	g.act1 = g.account(g.org)
	g.act2 = g.account(g.org)
	g.otherAct = g.account(g.otherOrg)
	p, err := g.writer.CreatePolicy(ctx, store.Policy{Org: g.org, Name: "clusters", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET", "POST"}, Paths: []string{"/api/**"}},
		{Effect: "deny", Methods: []string{"*"}, Paths: []string{"/api/admin", "/api/admin/*"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	g.polRead = p.ID
	return g
}

func (g *gateway) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	g.t.Cleanup(cancel)
	return ctx
}

func (g *gateway) account(org string) string {
	g.t.Helper()
	a, err := g.writer.CreateAccount(g.ctx(), store.Account{Org: org, Name: "a"}, operator)
	if err != nil {
		g.t.Fatal(err)
	}
	return a.ID
}

// user creates a user and a token for it; the token's kind follows the
// user's type.
func (g *gateway) user(mutate func(u *store.User)) (*store.User, string) {
	g.t.Helper()
	u := store.User{Org: g.org, Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: g.act1, Role: store.RoleEditor, Name: "ci-bot"}
	if mutate != nil {
		mutate(&u)
	}
	kind := token.Programmatic
	if u.Type == store.TypeUI {
		kind, u.Email = token.Personal, "ana@example.com"
	}
	secret, err := token.Generate(kind)
	if err != nil {
		g.t.Fatal(err)
	}
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
	created, err := g.writer.CreateUser(g.ctx(), u, &nt, operator)
	if err != nil {
		g.t.Fatal(err)
	}
	return created, secret
}

// synced waits until the gateway's cache has applied every change so far.
func (g *gateway) synced() {
	g.t.Helper()
	resp, err := g.writer.Client().Get(g.ctx(), "/tg/", clientv3.WithCountOnly())
	if err != nil {
		g.t.Fatal(err)
	}
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		g.t.Fatal(err)
	}
	if err := app.(*tokengate.App).Verifier().WaitForRevision(g.ctx(), resp.Header.Revision); err != nil {
		g.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
	echo   echo
	code   string
}

// do sends a request with the given token (none when empty) and headers.
func (g *gateway) do(method, path, tok string, hdr ...string) response {
	g.t.Helper()
	return g.send(method, path, tok, nil, hdr...)
}

// send is do with a request body.
func (g *gateway) send(method, path, tok string, body io.Reader, hdr ...string) response {
	g.t.Helper()
	req, err := http.NewRequest(method, g.base+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	return g.read(resp)
}

func (g *gateway) read(resp *http.Response) response {
	g.t.Helper()
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		if err := json.Unmarshal(body, &r.echo); err != nil {
			g.t.Fatalf("upstream body %q: %v", body, err)
		}
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			g.t.Fatalf("error body %q is not the contract's JSON", body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			g.t.Fatalf("error content type %q", ct)
		}
		r.code = e.Error.Code
	}
	return r
}

// raw sends a request line and headers exactly as given, for paths an HTTP
// client would tidy up.
func (g *gateway) raw(requestLine, tok string) response {
	g.t.Helper()
	return g.wire(fmt.Sprintf("%s\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", requestLine, tok))
}

// wire writes msg to the gateway byte for byte and reads the answer.
func (g *gateway) wire(msg string) response {
	g.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, msg); err != nil {
		g.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	return g.read(resp)
}

func (r response) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.status, r.code, r.body, status, code)
	}
}

func (r response) upstream(t *testing.T, name string) string {
	t.Helper()
	vals := r.echo.Header[name]
	if len(vals) > 1 {
		t.Fatalf("upstream got %d values of %s: %v", len(vals), name, vals)
	}
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func TestGateway(t *testing.T) {
	g := startGateway(t)
	prog, progTok := g.user(nil)
	uiUser, uiTok := g.user(func(u *store.User) { u.Type = store.TypeUI })
	orgUser, orgTok := g.user(func(u *store.User) {
		u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{g.act1, g.act2}
	})
	_, viewerTok := g.user(func(u *store.User) { u.Role = store.RoleViewer })
	_, policyTok := g.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{g.polRead} })
	_, otherOrgTok := g.user(func(u *store.User) { u.Org, u.Account = g.otherOrg, g.otherAct })

	t.Run("tags the request upstream", func(t *testing.T) {
		r := g.do("GET", "/api/clusters", progTok)
		r.want(t, 200, "")
		for name, want := range map[string]string{
			"X-Tokengate-User-Id":    prog.ID,
			"X-Tokengate-User-Type":  "programmatic",
			"X-Tokengate-User-Name":  "ci-bot",
			"X-Tokengate-Org-Id":     g.org,
			"X-Tokengate-Account-Id": g.act1,
			"X-Tokengate-Role":       "editor",
		} {
			if got := r.upstream(t, name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if !strings.HasPrefix(r.upstream(t, "X-Tokengate-Token-Id"), "tok-") {
			t.Errorf("token id header %q", r.upstream(t, "X-Tokengate-Token-Id"))
		}
		if r.upstream(t, "Authorization") != "" {
			t.Error("Authorization forwarded upstream")
		}
	})

	t.Run("forward_credentials keeps Authorization", func(t *testing.T) {
		r := g.do("GET", "/fwd/x", progTok)
		r.want(t, 200, "")
		if r.upstream(t, "Authorization") != "Bearer "+progTok {
			t.Fatalf("Authorization upstream = %q", r.upstream(t, "Authorization"))
		}
	})

	t.Run("placeholders for later handlers", func(t *testing.T) {
		r := g.do("GET", "/whoami", progTok)
		want := fmt.Sprintf("programmatic %s %s %s editor tok-", prog.ID, g.org, g.act1)
		if r.status != 200 || !strings.HasPrefix(string(r.body), want) {
			t.Fatalf("whoami = %d %q, want prefix %q", r.status, r.body, want)
		}
	})

	t.Run("identity headers from clients are stripped", func(t *testing.T) {
		spoof := []string{
			"X-Tokengate-User-Id", "u-000000000000",
			"x-tokengate-role", "admin",
			"X-TOKENGATE-ORG-ID", g.otherOrg,
			"X-Tokengate-Account-Id", g.otherAct,
			"X-Tokengate-Anything", "x",
			"X_Tokengate_User_Type", "ui",
		}
		// Anonymous on a UI route: everything stripped, nothing added.
		r := g.do("GET", "/ui/page", "", spoof...)
		r.want(t, 200, "")
		for name := range r.echo.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-tokengate-") {
				t.Errorf("anonymous request reached upstream with %s", name)
			}
		}
		// Authenticated: the real values, once each, and nothing else.
		r = g.do("GET", "/api/x", progTok, spoof...)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-User-Id") != prog.ID || r.upstream(t, "X-Tokengate-Role") != "editor" ||
			r.upstream(t, "X-Tokengate-Org-Id") != g.org || r.upstream(t, "X-Tokengate-Account-Id") != g.act1 {
			t.Errorf("spoofed values reached upstream: %v", r.echo.Header)
		}
		for _, name := range []string{"X-Tokengate-Anything", "X_Tokengate_User_Type"} {
			if _, ok := r.echo.Header[name]; ok {
				t.Errorf("%s reached upstream", name)
			}
		}
	})

	t.Run("bearer parsing", func(t *testing.T) {
		g.do("GET", "/api/x", "").want(t, 401, "missing_token")
		r := g.do("GET", "/api/x", "")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate"` {
			t.Errorf("WWW-Authenticate without token = %q", got)
		}
		for _, scheme := range []string{"bearer", "BEARER", "BeArEr"} {
			g.do("GET", "/api/x", "", "Authorization", scheme+" "+progTok).want(t, 200, "")
		}
		g.do("GET", "/api/x", "", "Authorization", "Bearer   "+progTok).want(t, 200, "")
		g.do("GET", "/api/x", "", "Authorization", "Basic dXNlcjpwYXNz").want(t, 401, "missing_token")
		g.do("GET", "/api/x", "", "Authorization", "").want(t, 401, "missing_token")
		g.do("GET", "/api/x", "", "Authorization", "Bearer").want(t, 401, "invalid_token")
		g.do("GET", "/api/x", "", "Authorization", "Bearer "+progTok, "Authorization", "Bearer "+progTok).want(t, 401, "invalid_token")
		g.do("GET", "/api/x", "", "Authorization", "Bearer "+strings.Repeat("a", 5000)).want(t, 401, "invalid_token")
		g.do("GET", "/api/x", "tgp_notatoken").want(t, 401, "invalid_token")
		unknown, _ := token.Generate(token.Programmatic)
		r = g.do("GET", "/api/x", unknown)
		r.want(t, 401, "invalid_token")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate", error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		// Tokens in the query string are never read. (A client that puts
		// one there has exposed it to every log on the way; this one is
		// never used again.)
		_, inQuery := g.user(nil)
		g.do("GET", "/api/x?access_token="+inQuery, "").want(t, 401, "missing_token")
		g.do("GET", "/api/x?token="+inQuery, "").want(t, 401, "missing_token")
	})

	t.Run("ui routes", func(t *testing.T) {
		r := g.do("GET", "/ui/page", progTok)
		r.want(t, 403, "programmatic_ui_forbidden")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate", error="insufficient_scope"` {
			t.Errorf("WWW-Authenticate on 403 = %q", got)
		}
		r = g.do("GET", "/ui/page", uiTok)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-User-Id") != uiUser.ID || r.upstream(t, "X-Tokengate-User-Type") != "ui" {
			t.Errorf("UI user not tagged: %v", r.echo.Header)
		}
		r = g.do("GET", "/ui/page", "")
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-User-Id") != "" {
			t.Error("anonymous UI request tagged")
		}
		unknown, _ := token.Generate(token.Personal)
		g.do("GET", "/ui/page", unknown).want(t, 401, "invalid_token")
		// A UI user's personal token works on API routes too.
		r = g.do("GET", "/api/x", uiTok)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-User-Type") != "ui" {
			t.Error("UI token on the API not tagged as ui")
		}
	})

	t.Run("types", func(t *testing.T) {
		g.do("GET", "/prog/x", progTok).want(t, 200, "")
		g.do("GET", "/prog/x", uiTok).want(t, 403, "user_type_forbidden")
	})

	t.Run("accounts", func(t *testing.T) {
		// Account-level user: own account by default; others refused.
		if r := g.do("GET", "/api/x", progTok); r.upstream(t, "X-Tokengate-Account-Id") != g.act1 {
			t.Errorf("default account %q", r.upstream(t, "X-Tokengate-Account-Id"))
		}
		g.do("GET", "/api/x?accountId="+g.act1, progTok).want(t, 200, "")
		g.do("GET", "/api/x?accountId="+g.act2, progTok).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x", progTok, "X-Account-Id", g.act2).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x?accountId="+g.otherAct, progTok).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x?accountId=act-00000000", progTok).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x?accountId=garbage", progTok).want(t, 403, "account_forbidden")
		// Ambiguity is refused rather than resolved.
		g.do("GET", "/api/x?accountId="+g.act1+"&accountId="+g.act2, progTok).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x?accountId="+g.act1, progTok, "X-Account-Id", g.act2).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x?accountId="+g.act1, progTok, "X-Account-Id", g.act1).want(t, 200, "")

		// Organization-level user: must name one of its accounts.
		g.do("GET", "/api/x", orgTok).want(t, 400, "account_required")
		r := g.do("GET", "/api/x?accountId="+g.act2, orgTok)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-Account-Id") != g.act2 || r.upstream(t, "X-Tokengate-User-Id") != orgUser.ID {
			t.Errorf("org user tagging: %v", r.echo.Header)
		}
		g.do("GET", "/api/x", orgTok, "X-Account-Id", g.act1).want(t, 200, "")
		g.do("GET", "/api/x?accountId="+g.otherAct, orgTok).want(t, 403, "account_forbidden")
		g.do("GET", "/api/x", otherOrgTok, "X-Account-Id", g.act1).want(t, 403, "account_forbidden")

		// A configured placeholder.
		g.do("GET", "/tenant/x", orgTok, "X-Tenant", g.act1).want(t, 200, "")
		g.do("GET", "/tenant/x", orgTok, "X-Tenant", g.otherAct).want(t, 403, "account_forbidden")
		g.do("GET", "/tenant/x", orgTok).want(t, 400, "account_required")
	})

	t.Run("organization scope", func(t *testing.T) {
		g.do("GET", "/org/x", progTok).want(t, 403, "level_forbidden")
		r := g.do("GET", "/org/x", orgTok)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-Account-Id") != "" {
			t.Error("org-wide route tagged with an account")
		}
	})

	t.Run("roles", func(t *testing.T) {
		for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
			if r := g.do(m, "/api/x", viewerTok); r.status != 200 {
				t.Errorf("viewer %s: %d", m, r.status)
			}
		}
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			g.do(m, "/api/x", viewerTok).want(t, 403, "role_forbidden")
			g.do(m, "/api/x", progTok).want(t, 200, "")
		}
		// Method overrides are judged too.
		g.do("GET", "/api/x", viewerTok, "X-HTTP-Method-Override", "DELETE").want(t, 403, "role_forbidden")
		g.do("GET", "/api/x?_method=delete", viewerTok).want(t, 403, "role_forbidden")
		g.do("GET", "/api/x", viewerTok, "X-HTTP-Method-Override", "GET").want(t, 200, "")

		// Policy role: allowed where the policy allows, and no spelling of
		// a denied path gets through.
		g.do("GET", "/api/clusters/c1", policyTok).want(t, 200, "")
		g.do("POST", "/api/clusters", policyTok).want(t, 200, "")
		g.do("DELETE", "/api/clusters/c1", policyTok).want(t, 403, "role_forbidden")
		g.do("GET", "/api/admin/users", policyTok).want(t, 403, "role_forbidden")
		for _, p := range []string{
			"/api/admin", "/api/admin/", "/api//admin/users", "/api/./admin", "/api/public/../admin",
			"/api/public/%2e%2e/admin", "/api/public%2F..%2Fadmin", "/api/%61dmin", "/api/public/%252e%252e/admin",
			"/API/ADMIN", "/api/Admin/users", "/api/x/..\\admin",
		} {
			g.raw("GET "+p+" HTTP/1.1", policyTok).want(t, 403, "role_forbidden")
		}
		// Paths outside every route never reach tokengate nor the upstream
		// (Caddy answers them itself); what matters is the upstream.
		for _, p := range []string{"/api\\admin", "/api%2Fadmin", "/%61pi/admin"} {
			if r := g.raw("GET "+p+" HTTP/1.1", policyTok); r.echo.Method != "" && r.code != "role_forbidden" {
				t.Errorf("GET %s reached the upstream as %q", p, r.echo.Path)
			}
		}
		g.raw("GET /api/clusters/./c1 HTTP/1.1", policyTok).want(t, 200, "")
	})

	t.Run("expired token", func(t *testing.T) {
		u, tok := g.user(nil)
		toks, _ := g.writer.ListTokens(g.ctx(), g.org, u.ID)
		// Rotation with a short overlap sets the old token's expiry.
		secret, _ := token.Generate(token.Programmatic)
		nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Org: g.org, User: u.ID}}
		if _, err := g.writer.CreateToken(g.ctx(), nt, &store.Rotation{Replaces: toks[0].ID, Overlap: time.Millisecond}, operator); err != nil {
			t.Fatal(err)
		}
		g.synced()
		deadline := time.Now().Add(5 * time.Second)
		for r := g.do("GET", "/api/x", tok); r.code != "expired_token"; r = g.do("GET", "/api/x", tok) {
			if time.Now().After(deadline) {
				t.Fatalf("old token still answers %d %q", r.status, r.code)
			}
		}
		g.do("GET", "/api/x", secret).want(t, 200, "")
	})

	t.Run("disabled user", func(t *testing.T) {
		u, tok := g.user(nil)
		g.do("GET", "/api/x", tok).want(t, 200, "")
		if _, err := g.writer.UpdateUser(g.ctx(), g.org, u.ID, func(u *store.User) error { u.Disabled = true; return nil }, operator); err != nil {
			t.Fatal(err)
		}
		g.synced()
		g.do("GET", "/api/x", tok).want(t, 401, "invalid_token")
	})

	t.Run("revoked token refused at once", func(t *testing.T) {
		u, tok := g.user(nil)
		g.do("GET", "/api/x", tok).want(t, 200, "")
		toks, _ := g.writer.ListTokens(g.ctx(), g.org, u.ID)
		if err := g.writer.RevokeToken(g.ctx(), g.org, u.ID, toks[0].ID, operator); err != nil {
			t.Fatal(err)
		}
		g.synced()
		g.do("GET", "/api/x", tok).want(t, 401, "invalid_token")
	})

	t.Run("deleting a UI user ends its tokens, not programmatic ones", func(t *testing.T) {
		ana, anaTok := g.user(func(u *store.User) { u.Type = store.TypeUI })
		g.do("GET", "/api/x", anaTok).want(t, 200, "")
		g.do("GET", "/api/x", progTok).want(t, 200, "")
		if err := g.writer.DeleteUser(g.ctx(), g.org, ana.ID, operator); err != nil {
			t.Fatal(err)
		}
		g.synced()
		g.do("GET", "/api/x", anaTok).want(t, 401, "invalid_token")
		g.do("GET", "/ui/x", anaTok).want(t, 401, "invalid_token")
		g.do("GET", "/api/x", progTok).want(t, 200, "")
	})

	t.Run("access log", func(t *testing.T) {
		// logged waits for the access log entry of path: it is written
		// after the response.
		logged := func(path string) map[string]any {
			deadline := time.Now().Add(5 * time.Second)
			var entry map[string]any
			for entry == nil {
				data, _ := os.ReadFile(g.logFile)
				for _, line := range strings.Split(string(data), "\n") {
					if strings.Contains(line, `"uri":"`+path+`"`) {
						json.Unmarshal([]byte(line), &entry)
					}
				}
				if entry == nil && time.Now().After(deadline) {
					t.Fatalf("no access log entry for %s", path)
				}
			}
			return entry
		}
		g.do("GET", "/api/logged", progTok).want(t, 200, "")
		entry := logged("/api/logged")
		if entry["user_id"] != prog.ID || entry["user_type"] != "programmatic" || entry["error_code"] != nil {
			t.Errorf("access log user_id=%v user_type=%v error_code=%v", entry["user_id"], entry["user_type"], entry["error_code"])
		}
		// Every refusal names its code; a valid token's, whose it was.
		g.do("GET", "/api/refused?accountId="+g.otherAct, progTok).want(t, 403, "account_forbidden")
		entry = logged("/api/refused?accountId=" + g.otherAct)
		if entry["error_code"] != "account_forbidden" || entry["user_id"] != prog.ID || entry["user_type"] != "programmatic" ||
			entry["org_id"] != g.org || entry["token_id"] == nil || entry["token_id"] == "" {
			t.Errorf("refusal's access log entry: %v", entry)
		}
		g.do("GET", "/api/unknown", "tgp_"+strings.Repeat("x", 46)).want(t, 401, "invalid_token")
		entry = logged("/api/unknown")
		if entry["error_code"] != "invalid_token" || entry["user_id"] != nil && entry["user_id"] != "" || entry["org_id"] != nil {
			t.Errorf("unknown token's access log entry: %v", entry)
		}
		g.do("GET", "/ui/refused", progTok).want(t, 403, "programmatic_ui_forbidden")
		if entry = logged("/ui/refused"); entry["error_code"] != "programmatic_ui_forbidden" || entry["user_id"] != prog.ID {
			t.Errorf("ui refusal's access log entry: %v", entry)
		}
		data, _ := os.ReadFile(g.logFile)
		for _, secret := range []string{progTok, uiTok, orgTok, viewerTok, policyTok} {
			if strings.Contains(string(data), secret[4:44]) {
				t.Fatal("a token appears in the access log")
			}
		}
	})

	t.Run("store unavailable", func(t *testing.T) {
		_, fresh := g.user(nil)
		g.synced()
		g.etcd.Stop()
		defer g.etcd.Restart()
		r := g.do("GET", "/api/x", fresh)
		r.want(t, 503, "store_unavailable")
		// A cached identity is still honoured within max_stale.
		g.do("GET", "/api/x", progTok).want(t, 200, "")
	})
}

// TestDemoCaddyfile runs the README's demo config (testdata/Caddyfile) on
// free ports and a temporary data directory, and checks what it shows.
func TestDemoCaddyfile(t *testing.T) {
	port, upstreamPort, adminPort := caddytest.FreePort(t), caddytest.FreePort(t), caddytest.FreePort(t)
	t.Setenv("TOKENGATE_PORT", fmt.Sprint(port))
	t.Setenv("TOKENGATE_UPSTREAM_PORT", fmt.Sprint(upstreamPort))
	t.Setenv("TOKENGATE_ADMIN_PORT", fmt.Sprint(adminPort))
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	body, err := os.ReadFile("../../testdata/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	caddytest.Load(t, string(body), nil)
	appIface, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	app := appIface.(*tokengate.App)
	if app.Conn().Embedded() == nil || !strings.HasPrefix(app.Conn().Embedded().Dir(), os.Getenv("XDG_DATA_HOME")) {
		t.Fatalf("demo store: %s", app.Conn().Description)
	}

	g := &gateway{t: t, writer: app.Store(), org: "demo", base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if _, err := g.writer.CreateOrg(g.ctx(), store.Org{ID: "demo", Name: "Demo"}, operator); err != nil {
		t.Fatal(err)
	}
	g.act1 = g.account("demo")
	u, tok := g.user(nil)

	var shown struct {
		UpstreamSaw map[string]string `json:"upstream_saw"`
	}
	r := g.do("GET", "/api/clusters", tok, "X-Tokengate-Role", "admin")
	if r.status != 200 || json.Unmarshal(r.body, &shown) != nil {
		t.Fatalf("demo api: %d %s", r.status, r.body)
	}
	want := map[string]string{"path": "/api/clusters", "user_id": u.ID, "user_type": "programmatic", "org_id": "demo",
		"account_id": g.act1, "role": "editor", "authorization": ""}
	for k, v := range want {
		if shown.UpstreamSaw[k] != v {
			t.Errorf("upstream saw %s = %q, want %q", k, shown.UpstreamSaw[k], v)
		}
	}
	g.do("GET", "/ui/home", tok).want(t, 403, "programmatic_ui_forbidden")
	g.do("GET", "/api/clusters", "").want(t, 401, "missing_token")
}
