package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/tokengate"
)

// env is a running Caddy with the admin API on its admin endpoint and as
// tokengate_admin under /admin/, a gateway route, and a real etcd.
type env struct {
	t        *testing.T
	etcd     *etcdtest.Server
	adminURL string // Caddy's admin endpoint
	siteURL  string
	logFile  string

	mu      sync.Mutex
	secrets []string // every secret handed out, to look for in logs
	answers []answer // every answer of the API, to check against the OpenAPI document
}

// answer is one exchange with the API.
type answer struct {
	method, path string
	status       int
	body         []byte
}

const envCaddyfile = `{
	admin 127.0.0.1:{{ADMIN}}
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
	log {
		output file {{LOG}}
		level DEBUG
	}
}

http://127.0.0.1:{{PORT}} {
	log
	handle_path /admin/* {
		tokengate_admin
	}
	route /api/* {
		tokengate api
		respond "ok {http.auth.user.id}"
	}
	route /ui/* {
		tokengate ui
		respond "ui {http.auth.user.id}"
	}
}
`

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, envCaddyfile)
}

// startEnvWith is startEnv with another Caddyfile using the same
// placeholders.
func startEnvWith(t *testing.T, caddyfile string) *env {
	t.Helper()
	e := &env{t: t, etcd: etcdtest.Start(t), logFile: filepath.Join(t.TempDir(), "caddy.log")}
	adminPort, port := caddytest.FreePort(t), caddytest.FreePort(t)
	e.adminURL = fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort)
	e.siteURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(e.checkLogsHoldNoSecret) // runs after Caddy has stopped
	caddytest.Load(t, caddyfile, map[string]string{"ADMIN": fmt.Sprint(adminPort), "ETCD": e.etcd.Endpoint(),
		"LOG": e.logFile, "PORT": fmt.Sprint(port)})
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// resp is an answer of the API.
type resp struct {
	status int
	body   []byte
	header http.Header
	code   string // error code, if any
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (r resp) field(t *testing.T, path ...string) string {
	t.Helper()
	var v any
	r.json(t, &v)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %s", path, r.body)
		}
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// call sends a request to the API: as the operator when tok is "", else to
// /admin/ on the site with tok as bearer token. body is JSON-encoded unless
// it is a string (sent as is).
func (e *env) call(tok, method, path string, body any) resp {
	e.t.Helper()
	url := e.adminURL + path
	if tok != "" {
		url = e.siteURL + "/admin" + path
	}
	return e.send(tok, method, url, body, "application/json")
}

func (e *env) send(tok, method, url string, body any, contentType string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, body: data, header: res.Header}
	if res.StatusCode >= 400 {
		var eb struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			e.t.Fatalf("%s %s: error body %q is not the contract's JSON", method, url, data)
		}
		r.code = eb.Error.Code
	}
	e.remember(data)
	if path, ok := strings.CutPrefix(url, e.adminURL); ok {
		e.record(method, path, r)
	} else if path, ok := strings.CutPrefix(url, e.siteURL+"/admin"); ok {
		e.record(method, path, r)
	}
	return r
}

func (e *env) record(method, path string, r resp) {
	path, _, _ = strings.Cut(path, "?")
	e.mu.Lock()
	e.answers = append(e.answers, answer{method, path, r.status, r.body})
	e.mu.Unlock()
}

// remember keeps any secret an answer carries.
func (e *env) remember(body []byte) {
	var v struct {
		Secret string
		Token  struct{ Secret string }
	}
	if json.Unmarshal(body, &v) == nil {
		e.mu.Lock()
		for _, s := range []string{v.Secret, v.Token.Secret} {
			if s != "" {
				e.secrets = append(e.secrets, s)
			}
		}
		e.mu.Unlock()
	}
}

func (e *env) must(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("got %d %s, want %d", r.status, r.body, status)
	}
	return r
}

// gateway sends a GET through the site's api or ui route.
func (e *env) gateway(tok, path string) resp {
	e.t.Helper()
	return e.send(tok, "GET", e.siteURL+path, nil, "")
}

// checkLogsHoldNoSecret fails the test if any secret handed out appears in
// anything Caddy logged.
func (e *env) checkLogsHoldNoSecret() {
	data, err := os.ReadFile(e.logFile)
	if err != nil {
		e.t.Errorf("reading the log: %v", err)
		return
	}
	if len(data) == 0 {
		e.t.Error("nothing was logged: the check would prove nothing")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if bytes.Contains(data, []byte(s[4:44])) {
			e.t.Errorf("a secret (%s…) appears in the log", s[:8])
		}
	}
}

// syncCache waits until the gateway's cache has applied every change.
func (e *env) syncCache() {
	e.t.Helper()
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		e.t.Fatal(err)
	}
	a := app.(*tokengate.App)
	if err := a.Verifier().WaitForRevision(e.ctx(), a.Store().LastCommit()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) flushUse() {
	app, _ := caddy.ActiveContext().App("tokengate")
	app.(*tokengate.App).Verifier().FlushUse(e.ctx())
}

// world is an organization set up through the operator's API.
type world struct {
	org, other     string
	a1, a2, g1     string // accounts: two in org, one in other
	polOrg         string // organization-wide policy
	polA1, polA2   string // account policies
	orgAdmin       string // tokens…
	orgAdminUI     string
	acctAdminA1    string
	acctAdminA2    string
	viewerA1       string
	editorA1       string
	disabledAdmin  string
	otherOrgAdmin  string
	orgAdminID     string // user IDs…
	acctAdminA1ID  string
	userA1, userA2 string // plain users
	orgViewer      string
	orgViewerTok   string
}

func (e *env) setup() *world {
	e.t.Helper()
	w := &world{org: "acme", other: "globex"}
	for _, org := range []string{w.org, w.other} {
		e.must(e.call("", "POST", "/orgs", map[string]string{"id": org, "name": org}), 201)
	}
	account := func(org string) string {
		return e.must(e.call("", "POST", "/orgs/"+org+"/accounts", map[string]string{"name": "a"}), 201).field(e.t, "id")
	}
	w.a1, w.a2, w.g1 = account(w.org), account(w.org), account(w.other)
	stmts := []map[string]any{{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/api/**"}}}
	policy := func(account string) string {
		body := map[string]any{"name": "p", "statements": stmts}
		if account != "" {
			body["account"] = account
		}
		return e.must(e.call("", "POST", "/orgs/"+w.org+"/policies", body), 201).field(e.t, "id")
	}
	w.polOrg, w.polA1, w.polA2 = policy(""), policy(w.a1), policy(w.a2)
	var id string
	id, w.orgAdmin = e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1, w.a2}, "role": "admin"})
	w.orgAdminID = id
	uiAdmin := e.must(e.call("", "POST", "/orgs/"+w.org+"/users", map[string]any{"type": "ui", "level": "organization",
		"accounts": []string{w.a1}, "role": "admin", "name": "Ana", "email": "ana@example.com"}), 201).field(e.t, "user", "id")
	w.orgAdminUI = e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+uiAdmin+"/tokens", map[string]any{"name": "laptop"}), 201).field(e.t, "secret")
	w.acctAdminA1ID, w.acctAdminA1 = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin"})
	_, w.acctAdminA2 = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a2, "role": "admin"})
	_, w.viewerA1 = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	_, w.editorA1 = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "editor"})
	disabledID, tok := e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin"})
	w.disabledAdmin = tok
	e.must(e.call("", "PATCH", "/orgs/"+w.org+"/users/"+disabledID, map[string]any{"disabled": true}), 200)
	_, w.otherOrgAdmin = e.programmatic(w.other, map[string]any{"level": "organization", "accounts": []string{w.g1}, "role": "admin"})
	w.userA1, _ = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	w.userA2, _ = e.programmatic(w.org, map[string]any{"level": "account", "account": w.a2, "role": "viewer"})
	w.orgViewer, w.orgViewerTok = e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1}, "role": "viewer"})
	return w
}

// programmatic creates a programmatic user through the operator's API and
// returns its ID and first token.
func (e *env) programmatic(org string, fields map[string]any) (string, string) {
	e.t.Helper()
	body := map[string]any{"type": "programmatic", "name": "bot"}
	for k, v := range fields {
		body[k] = v
	}
	r := e.must(e.call("", "POST", "/orgs/"+org+"/users", body), 201)
	return r.field(e.t, "user", "id"), r.field(e.t, "token", "secret")
}
