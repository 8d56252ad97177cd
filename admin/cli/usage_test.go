package cli_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/tokengate"
)

// sendN sends n requests with tok through the gateway and checks each
// answer's status.
func (e *env) sendN(t *testing.T, tok, method, path string, n, status int) {
	t.Helper()
	for i := 0; i < n; i++ {
		req, err := http.NewRequest(method, e.siteURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != status {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, status)
		}
	}
}

// flushRequests makes the gateway write its request counts now, rather
// than at its next 5-minute write.
func flushRequests(t *testing.T) {
	t.Helper()
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.(*tokengate.App).Verifier().FlushRequests(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// lines are stdout's lines.
func (r result) lines() []string { return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") }

// hasLine reports whether some line of stdout holds every field, in order,
// as whole words.
func (r result) hasLine(fields ...string) bool {
	for _, l := range r.lines() {
		words, i := strings.Fields(l), 0
		for _, w := range words {
			if i < len(fields) && w == fields[i] {
				i++
			}
		}
		if i == len(fields) {
			return true
		}
	}
	return false
}

// TestUsageCommands: user usage, org usage and user advice show what
// users' requests through the gateway did, as JSON, ids and tables, as the
// operator and as an account admin, who sees only its own users.
func TestUsageCommands(t *testing.T) {
	e := startEnv(t)
	e.op(t, "org", "create", "--name", "Acme", "--org", "acme").ok(t)
	prod := e.op(t, "account", "create", "--org", "acme", "--name", "prod").ok(t).field(t, "id")
	staging := e.op(t, "account", "create", "--org", "acme", "--name", "staging").ok(t).field(t, "id")
	user := func(account, role, name string) (string, string) {
		r := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", account,
			"--role", role, "--name", name).ok(t)
		return r.field(t, "user", "id"), r.field(t, "token", "secret")
	}
	editorID, editor := user(prod, "editor", "deployer")
	viewerID, viewer := user(staging, "viewer", "reader")
	idleID, _ := user(prod, "viewer", "idle")
	_, prodAdmin := user(prod, "admin", "prod-admin")

	e.sendN(t, editor, "GET", "/api/things/1", 3, 200)
	e.sendN(t, editor, "POST", "/api/things", 1, 200)
	e.sendN(t, viewer, "DELETE", "/api/things/1", 2, 403)
	e.sendN(t, viewer, "GET", "/api/x", 1, 200)
	flushRequests(t)

	// user usage: the API's report as JSON; the user's id; a table of its
	// routes with totals.
	rep := e.op(t, "user", "usage", "--org", "acme", "--user", editorID).ok(t).json(t)
	if rep["user_id"] != editorID || rep["requests"] != 4.0 {
		t.Errorf("user usage: %v", rep)
	}
	if got := e.op(t, "user", "usage", "--org", "acme", "--user", editorID, "--output", "id").ok(t).stdout; got != editorID+"\n" {
		t.Errorf("user usage --output id: %q", got)
	}
	table := e.op(t, "user", "usage", "--org", "acme", "--user", editorID, "--output", "table").ok(t)
	if !strings.HasPrefix(table.stdout, editorID+" from ") || !table.hasLine("4", "requests") ||
		!table.hasLine("METHOD", "ROUTE", "ACCOUNT", "OUTCOME", "COUNT") ||
		!table.hasLine("GET", "/api/things", prod, "admitted", "3") || !table.hasLine("POST", "/api/things", prod, "admitted", "1") ||
		!table.hasLine("TOTAL", "-", "-", "admitted", "4") || !table.hasLine("TOTAL", "-", "-", "all", "4") {
		t.Errorf("user usage --output table:\n%s", table.stdout)
	}
	table = e.op(t, "user", "usage", "--org", "acme", "--user", viewerID, "--output", "table").ok(t)
	if !table.hasLine("DELETE", "/api/things", "role_forbidden", "2") || !table.hasLine("TOTAL", "role_forbidden", "2") ||
		!table.hasLine("TOTAL", "all", "3") {
		t.Errorf("user usage --output table of a refused user:\n%s", table.stdout)
	}
	// A window without requests, and one the API refuses, naming the flag.
	empty := e.op(t, "user", "usage", "--org", "acme", "--user", editorID, "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z").ok(t).json(t)
	if empty["requests"] != 0.0 || empty["from"] != "2026-01-01T00:00:00Z" {
		t.Errorf("user usage of an empty window: %v", empty)
	}
	if r := e.op(t, "user", "usage", "--org", "acme", "--user", editorID, "--from", "yesterday").failed(t); !strings.Contains(r.stderr, "invalid_request: from ") {
		t.Errorf("user usage --from yesterday: %s", r.stderr)
	}

	// org usage: one line per user with requests, busiest first.
	if got := e.op(t, "org", "usage", "--org", "acme", "--output", "id").ok(t).stdout; got != editorID+"\n"+viewerID+"\n" {
		t.Errorf("org usage --output id: %q", got)
	}
	table = e.op(t, "org", "usage", "--org", "acme", "--output", "table").ok(t)
	if !table.hasLine("2", "users") || !table.hasLine("USER", "REQUESTS", "REFUSED", "OUTCOMES") ||
		!table.hasLine(editorID, "4", "0", "admitted=4") || !table.hasLine(viewerID, "3", "2", "role_forbidden=2,admitted=1") ||
		!table.hasLine("TOTAL", "7", "2") || strings.Contains(table.stdout, idleID) {
		t.Errorf("org usage --output table:\n%s", table.stdout)
	}
	// An account admin, through the mount, sees its account's users only.
	if got := e.as(t, prodAdmin, "org", "usage", "--org", "acme", "--output", "id").ok(t).stdout; got != editorID+"\n" {
		t.Errorf("org usage as prod's admin: %q", got)
	}
	if r := e.as(t, prodAdmin, "user", "usage", "--org", "acme", "--user", viewerID).failed(t); !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("user usage of another account's user as prod's admin: %s", r.stderr)
	}

	// user advice: JSON, and a table of what went unused and each
	// suggestion's patch.
	adv := e.op(t, "user", "advice", "--org", "acme", "--user", viewerID, "--days", "7").ok(t).json(t)
	if adv["user_id"] != viewerID || adv["admitted"] != 1.0 {
		t.Errorf("user advice: %v", adv)
	}
	table = e.as(t, prodAdmin, "user", "advice", "--org", "acme", "--user", idleID, "--output", "table").ok(t)
	if !strings.HasPrefix(table.stdout, idleID+" from ") || !table.hasLine("0", "admitted;", "methods", "used:", "none") ||
		!table.hasLine("No", "unused") || !table.hasLine("KIND", "WHY", "PATCH") || !table.hasLine("disable", `{"disabled":true}`) {
		t.Errorf("user advice --output table of an idle user:\n%s", table.stdout)
	}
	table = e.op(t, "user", "advice", "--org", "acme", "--user", editorID, "--output", "table").ok(t)
	if !table.hasLine("methods", "used:", "GET,POST") || !table.hasLine("policy", `{"policies":["{new_policy_id}"],"role":"policy"}`) ||
		!strings.Contains(table.stdout, "to create first") || !strings.Contains(table.stdout, `"paths":["/api/things","/api/things/**"]`) {
		t.Errorf("user advice --output table of an editor:\n%s", table.stdout)
	}
	if r := e.op(t, "user", "advice", "--org", "acme", "--user", editorID, "--days", "32").failed(t); !strings.Contains(r.stderr, "invalid_request: days ") {
		t.Errorf("user advice --days 32: %s", r.stderr)
	}
}
