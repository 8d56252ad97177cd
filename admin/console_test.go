package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/admin"
	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
)

// consoleCaddyfile is env's site with the gateway route in front of a real
// upstream, so tests see the identity headers the upstream receives; its
// webhooks may reach receivers on loopback.
const consoleCaddyfile = `{
	admin 127.0.0.1:{{ADMIN}}
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
		webhook_allow_private
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
		reverse_proxy {{UPSTREAM}}
	}
}
`

// startConsoleEnv is startEnv with consoleCaddyfile: the admin API (and
// with it the console) under /admin/, and /api/* through the gateway to an
// upstream that answers with the identity it was given.
func startConsoleEnv(t *testing.T) *env {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(echoIdentity))
	t.Cleanup(upstream.Close)
	e := &env{t: t, etcd: etcdtest.Start(t), logFile: filepath.Join(t.TempDir(), "caddy.log")}
	adminPort, port := caddytest.FreePort(t), caddytest.FreePort(t)
	e.adminURL = fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort)
	e.siteURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(e.checkLogsHoldNoSecret) // runs after Caddy has stopped
	caddytest.Load(t, consoleCaddyfile, map[string]string{"ADMIN": fmt.Sprint(adminPort), "ETCD": e.etcd.Endpoint(),
		"LOG": e.logFile, "PORT": fmt.Sprint(port), "UPSTREAM": upstream.URL})
	return e
}

// upstreamIdentity is what echoIdentity saw.
type upstreamIdentity struct {
	UserID        string `json:"user_id"`
	UserType      string `json:"user_type"`
	UserName      string `json:"user_name"`
	Org           string `json:"org"`
	Account       string `json:"account"`
	Role          string `json:"role"`
	TokenID       string `json:"token_id"`
	Authorization bool   `json:"authorization"`
}

func echoIdentity(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(upstreamIdentity{
		UserID:        r.Header.Get("X-Tokengate-User-Id"),
		UserType:      r.Header.Get("X-Tokengate-User-Type"),
		UserName:      r.Header.Get("X-Tokengate-User-Name"),
		Org:           r.Header.Get("X-Tokengate-Org-Id"),
		Account:       r.Header.Get("X-Tokengate-Account-Id"),
		Role:          r.Header.Get("X-Tokengate-Role"),
		TokenID:       r.Header.Get("X-Tokengate-Token-Id"),
		Authorization: r.Header.Get("Authorization") != "",
	})
}

// through sends a request through the gateway route and returns the answer
// and, on 200, the identity the upstream received.
func (e *env) through(tok, method, path string) (resp, upstreamIdentity) {
	e.t.Helper()
	r := e.send(tok, method, e.siteURL+path, nil, "")
	var id upstreamIdentity
	if r.status == http.StatusOK {
		r.json(e.t, &id)
	}
	return r, id
}

// consoleWorld is an organization with the people and machines a console
// screen shows, created through the operator's API.
type consoleWorld struct {
	org, other          string
	production, staging string // accounts of org
	globexMain          string // account of other
	polRead             string // organization-wide: GET /api/**
	polDeploy           string // production: GET and POST /api/deployments/**
	polStaging          string // staging
	adminID, admin      string // Ana: UI, organization admin, and her personal token
	stagingAdmin        string // Sam: UI, admin of staging only
	viewer              string // Vic: UI, organization viewer
	machineAdmin        string // terraform: programmatic organization admin
	machineAdminID      string
	exporterID          string // metrics-exporter: programmatic, organization viewer
	exporter            string
	smokeTestsID        string // staging-smoke-tests: programmatic, staging editor
}

func (e *env) consoleWorld() *consoleWorld {
	e.t.Helper()
	w := &consoleWorld{org: "acme", other: "globex"}
	e.must(e.call("", "POST", "/orgs", map[string]string{"id": w.org, "name": "Acme Corp"}), 201)
	e.must(e.call("", "POST", "/orgs", map[string]string{"id": w.other, "name": "Globex"}), 201)
	account := func(org, name string) string {
		return e.must(e.call("", "POST", "/orgs/"+org+"/accounts", map[string]string{"name": name}), 201).field(e.t, "id")
	}
	w.production, w.staging = account(w.org, "Production"), account(w.org, "Staging")
	w.globexMain = account(w.other, "Main")
	policy := func(name, account string, methods, paths []string) string {
		body := map[string]any{"name": name, "description": name,
			"statements": []map[string]any{{"effect": "allow", "methods": methods, "paths": paths}}}
		if account != "" {
			body["account"] = account
		}
		return e.must(e.call("", "POST", "/orgs/"+w.org+"/policies", body), 201).field(e.t, "id")
	}
	w.polRead = policy("Read everything", "", []string{"GET"}, []string{"/api/**"})
	w.polDeploy = policy("Deploy production", w.production, []string{"GET", "POST"}, []string{"/api/deployments/**"})
	w.polStaging = policy("Staging reads", w.staging, []string{"GET"}, []string{"/api/**"})

	uiUser := func(fields map[string]any) (string, string) {
		body := map[string]any{"type": "ui"}
		for k, v := range fields {
			body[k] = v
		}
		id := e.must(e.call("", "POST", "/orgs/"+w.org+"/users", body), 201).field(e.t, "user", "id")
		tok := e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+id+"/tokens", map[string]any{"name": "browser"}), 201).field(e.t, "secret")
		return id, tok
	}
	w.adminID, w.admin = uiUser(map[string]any{"level": "organization", "accounts": []string{w.production, w.staging},
		"role": "admin", "name": "Ana Lima", "email": "ana@acme.example"})
	_, w.stagingAdmin = uiUser(map[string]any{"level": "account", "account": w.staging, "role": "admin",
		"name": "Sam Ortiz", "email": "sam@acme.example"})
	_, w.viewer = uiUser(map[string]any{"level": "organization", "accounts": []string{w.production}, "role": "viewer",
		"name": "Vic Chen", "email": "vic@acme.example"})
	w.machineAdminID, w.machineAdmin = e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin",
		"name": "terraform", "description": "Infrastructure as code", "accounts": []string{w.production, w.staging}})
	w.exporterID, w.exporter = e.programmatic(w.org, map[string]any{"level": "organization", "role": "viewer",
		"name": "metrics-exporter", "description": "Scrapes usage for billing", "accounts": []string{w.production}})
	w.smokeTestsID, _ = e.programmatic(w.org, map[string]any{"level": "account", "account": w.staging, "role": "editor",
		"name": "staging-smoke-tests", "description": "Runs after every staging deploy"})
	return w
}

// TestConsoleServing: the console's pages, its security headers, and the
// API under console/api/ for UI admins only.
func TestConsoleServing(t *testing.T) {
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	console := e.siteURL + "/admin/console/"

	t.Run("redirect is relative", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get(e.siteURL + "/admin/console")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "console/" {
			t.Fatalf("got %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
	})

	t.Run("pages load without a token", func(t *testing.T) {
		for _, tc := range []struct{ path, contentType string }{
			{"", "text/html; charset=utf-8"},
			{"index.html", "text/html; charset=utf-8"},
			{"app.js", "text/javascript; charset=utf-8"},
			{"app.css", "text/css; charset=utf-8"},
		} {
			r := e.send("", "GET", console+tc.path, nil, "")
			if r.status != 200 || r.header.Get("Content-Type") != tc.contentType {
				t.Fatalf("%s: %d %q", tc.path, r.status, r.header.Get("Content-Type"))
			}
			checkConsoleHeaders(t, r)
			if r.header.Get("ETag") == "" {
				t.Fatalf("%s: no ETag", tc.path)
			}
			req, _ := http.NewRequest("GET", console+tc.path, nil)
			req.Header.Set("If-None-Match", r.header.Get("ETag"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotModified {
				t.Fatalf("%s revalidated: %d", tc.path, res.StatusCode)
			}
		}
		if r := e.send("", "GET", console+"nope.js", nil, ""); r.status != 404 || r.code != "not_found" {
			t.Fatalf("unknown file: %d %s", r.status, r.body)
		}
		if r := e.send("", "POST", console, "{}", "application/json"); r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("POST on a page: %d %v", r.status, r.header)
		}
	})

	t.Run("markup fits the policy", func(t *testing.T) {
		// The CSP forbids inline script and style: the pages must need
		// none. The console and the API reference alike.
		for _, files := range [][2]string{{"index.html", "app.js"}, {"api-docs.html", "api-docs.js"}, {"index.html", "dom.js"}} {
			r := e.send("", "GET", console+files[0], nil, "")
			checkConsoleHeaders(t, r)
			page := string(r.body)
			for _, m := range regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`).FindAllStringSubmatch(page, -1) {
				if !strings.Contains(m[1], ` src="`) || strings.TrimSpace(m[2]) != "" {
					t.Errorf("%s has an inline script: %q", files[0], m[0])
				}
			}
			for _, bad := range []*regexp.Regexp{
				regexp.MustCompile(`<style`),
				regexp.MustCompile(`\sstyle=`),
				regexp.MustCompile(`\son[a-z]+=`),
				regexp.MustCompile(`javascript:`),
				regexp.MustCompile(`(src|href)="(https?:)?//`),
			} {
				if m := bad.FindString(page); m != "" {
					t.Errorf("%s has %q, which the policy forbids", files[0], m)
				}
			}
			js := string(e.send("", "GET", console+files[1], nil, "").body)
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage", "document.cookie", "http://", "https://"} {
				if strings.Contains(js, sink) {
					t.Errorf("%s uses %s", files[1], sink)
				}
			}
		}
	})

	t.Run("whoami", func(t *testing.T) {
		r := e.must(e.send(w.admin, "GET", console+"api/whoami", nil, ""), 200)
		checkConsoleHeaders(t, r)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("whoami Cache-Control %q", r.header.Get("Cache-Control"))
		}
		var me map[string]any
		r.json(t, &me)
		want := map[string]any{"id": w.adminID, "name": "Ana Lima", "type": "ui", "org": w.org, "level": "organization", "role": "admin"}
		for k, v := range want {
			if me[k] != v {
				t.Fatalf("whoami %s = %v, want %v (%s)", k, me[k], v, r.body)
			}
		}
		if accounts, _ := me["accounts"].([]any); len(accounts) != 2 {
			t.Fatalf("whoami accounts: %s", r.body)
		}
		if r := e.send(w.admin, "POST", console+"api/whoami", "{}", "application/json"); r.status != 405 {
			t.Fatalf("POST whoami: %d", r.status)
		}
		// whoami is the console's, not the API's.
		if r := e.send(w.admin, "GET", e.siteURL+"/admin/whoami", nil, ""); r.status != 404 {
			t.Fatalf("whoami on the API: %d", r.status)
		}
		for _, rt := range admin.New(nil, nil, nil).Routes() {
			if strings.Contains(rt.Pattern, "whoami") {
				t.Fatalf("whoami is in the API's routes: %v", rt)
			}
		}
	})

	t.Run("the API for UI admins", func(t *testing.T) {
		path := "orgs/" + w.org + "/users?type=programmatic"
		viaConsole := e.must(e.send(w.admin, "GET", console+"api/"+path, nil, ""), 200)
		direct := e.must(e.send(w.admin, "GET", e.siteURL+"/admin/"+path, nil, ""), 200)
		if string(viaConsole.body) != string(direct.body) {
			t.Fatalf("console/api answers differently:\n%s\n%s", viaConsole.body, direct.body)
		}
		if viaConsole.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("API answer Cache-Control %q", viaConsole.header.Get("Cache-Control"))
		}
		checkConsoleHeaders(t, viaConsole)
		// A change through the console is the UI admin's, in the audit trail.
		created := e.must(e.send(w.admin, "POST", console+"api/orgs/"+w.org+"/users", map[string]any{"type": "programmatic",
			"level": "account", "account": w.production, "role": "viewer", "name": "via-console"}, "application/json"), 201)
		var events struct {
			Events []struct {
				Actor  struct{ ID, Type string }
				Action string
				Target string
			}
		}
		e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?limit=1", nil), 200).json(t, &events)
		ev := events.Events[0]
		if ev.Action != "user.create" || ev.Target != created.field(t, "user", "id") || ev.Actor.ID != w.adminID || ev.Actor.Type != "ui" {
			t.Fatalf("audit event %+v", ev)
		}
		e.must(e.send(w.admin, "GET", console+"api/orgs/"+w.other, nil, ""), 403)
		// The mount itself still serves programmatic admins.
		e.must(e.send(w.machineAdmin, "GET", e.siteURL+"/admin/orgs/"+w.org, nil, ""), 200)
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, tok, path string
			status          int
			code            string
		}{
			{"programmatic admin, whoami", w.machineAdmin, "api/whoami", 403, "programmatic_ui_forbidden"},
			{"programmatic admin, API", w.machineAdmin, "api/orgs/" + w.org + "/users", 403, "programmatic_ui_forbidden"},
			{"programmatic admin, page", w.machineAdmin, "", 403, "programmatic_ui_forbidden"},
			{"programmatic admin, script", w.machineAdmin, "app.js", 403, "programmatic_ui_forbidden"},
			{"programmatic viewer, API", w.exporter, "api/orgs/" + w.org, 403, "programmatic_ui_forbidden"},
			{"UI viewer, whoami", w.viewer, "api/whoami", 403, "forbidden"},
			{"UI viewer, API", w.viewer, "api/orgs/" + w.org, 403, "forbidden"},
			{"no token, whoami", "", "api/whoami", 401, "unauthorized"},
			{"no token, API", "", "api/orgs/" + w.org, 401, "unauthorized"},
			{"bad token, API", "tgu_nope", "api/orgs/" + w.org, 401, "unauthorized"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.send(tc.tok, "GET", console+tc.path, nil, "")
				if r.status != tc.status || r.code != tc.code {
					t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
				}
				checkConsoleHeaders(t, r)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="tokengate"`) {
					t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
			})
		}
		// A UI viewer may load the pages: they hold nothing.
		e.must(e.send(w.viewer, "GET", console, nil, ""), 200)
	})
}

// checkConsoleHeaders checks the security headers every console answer
// carries.
func checkConsoleHeaders(t *testing.T, r resp) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Fatalf("Content-Security-Policy %q allows unsafe sources", csp)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := r.header.Get(name); got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
	}
}
