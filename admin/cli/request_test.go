package cli_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRequests: what each command sends, seen by a stand-in for the API.
// Only the flags given become fields; list flags split on commas and
// accumulate; both spellings of a flag work.
func TestRequests(t *testing.T) {
	stmts := `[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]`
	dir := t.TempDir()
	listFile := filepath.Join(dir, "statements.json")
	docFile := filepath.Join(dir, "policy.json")
	writeFile(t, listFile, stmts)
	writeFile(t, docFile, `{"name":"doc","description":"from the file","statements":`+stmts+`}`)
	var stmtsJSON any
	if err := json.Unmarshal([]byte(stmts), &stmtsJSON); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		args   []string
		method string
		path   string // under /tokengate on the admin endpoint
		query  string
		body   map[string]any // nil: no body at all
	}{
		{"org create", []string{"org", "create", "--name", "Acme"}, "POST", "/orgs", "", map[string]any{"name": "Acme"}},
		{"org create --org", []string{"org", "create", "--name", "Acme", "--org", "acme"}, "POST", "/orgs", "", map[string]any{"name": "Acme", "id": "acme"}},
		{"org create --id, the deprecated alias", []string{"org", "create", "--name", "Acme", "--id", "acme"}, "POST", "/orgs", "", map[string]any{"name": "Acme", "id": "acme"}},
		{"account create --account", []string{"account", "create", "--org", "acme", "--name", "prod", "--account", "act-0000beef"}, "POST", "/orgs/acme/accounts", "",
			map[string]any{"name": "prod", "id": "act-0000beef"}},
		{"account create --id, the deprecated alias", []string{"account", "create", "--org", "acme", "--name", "prod", "--id", "act-0000beef"}, "POST", "/orgs/acme/accounts", "",
			map[string]any{"name": "prod", "id": "act-0000beef"}},
		{"org get escapes the id", []string{"org", "get", "--org", "a b/c"}, "GET", "/orgs/a%20b%2Fc", "", nil},
		{"user create sends only what was given",
			[]string{"user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", "act-1a2b3c4d", "--role", "viewer", "--name", "ci-bot"},
			"POST", "/orgs/acme/users", "",
			map[string]any{"type": "programmatic", "level": "account", "account": "act-1a2b3c4d", "role": "viewer", "name": "ci-bot"}},
		{"list flags: commas, spaces, repeats",
			[]string{"user", "create", "--org", "acme", "--type", "ui", "--level", "organization", "--accounts", "act-1, act-2", "--accounts", "act-3",
				"--role", "viewer", "--name", "Ana", "--email", "ana@example.com"},
			"POST", "/orgs/acme/users", "",
			map[string]any{"type": "ui", "level": "organization", "accounts": []any{"act-1", "act-2", "act-3"}, "role": "viewer", "name": "Ana", "email": "ana@example.com"}},
		{"user list query", []string{"user", "list", "--org", "acme", "--type", "programmatic", "--limit", "5"}, "GET", "/orgs/acme/users", "limit=5&type=programmatic", nil},
		{"org update", []string{"org", "update", "--org", "acme", "--max-token-lifetime", "90d", "--dormant-after", "14d"}, "PATCH", "/orgs/acme", "",
			map[string]any{"max_token_lifetime": "90d", "dormant_after": "14d"}},
		{"org update clears", []string{"org", "update", "--org", "acme", "--max-token-lifetime", ""}, "PATCH", "/orgs/acme", "",
			map[string]any{"max_token_lifetime": ""}},
		{"user update false is a value", []string{"user", "update", "--org", "acme", "--user", "u-1", "--disabled=false"}, "PATCH", "/orgs/acme/users/u-1", "", map[string]any{"disabled": false}},
		{"user update clears", []string{"user", "update", "--org", "acme", "--user", "u-1", "--description", "", "--policies", ""}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"description": "", "policies": []any{}}},
		{"user create --allowed-cidrs",
			[]string{"user", "create", "--org", "acme", "--type", "programmatic", "--level", "organization", "--role", "viewer", "--name", "vpn",
				"--allowed-cidrs", "10.0.0.0/8, 2001:db8::/32", "--allowed_cidrs", "192.0.2.0/24"},
			"POST", "/orgs/acme/users", "",
			map[string]any{"type": "programmatic", "level": "organization", "role": "viewer", "name": "vpn",
				"allowed_cidrs": []any{"10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"}}},
		{"user update --allowed-cidrs", []string{"user", "update", "--org", "acme", "--user", "u-1", "--allowed-cidrs", "::1/128"}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"allowed_cidrs": []any{"::1/128"}}},
		{"user update clears --allowed-cidrs", []string{"user", "update", "--org", "acme", "--user", "u-1", "--allowed-cidrs", ""}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"allowed_cidrs": []any{}}},
		{"user create --rate-limit",
			[]string{"user", "create", "--org", "acme", "--type", "programmatic", "--level", "organization", "--role", "viewer", "--name", "exporter",
				"--rate-limit", "100/1m"},
			"POST", "/orgs/acme/users", "",
			map[string]any{"type": "programmatic", "level": "organization", "role": "viewer", "name": "exporter",
				"rate_limit": map[string]any{"requests": 100.0, "window": "1m"}}},
		{"user update --rate_limit, spaces trimmed", []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate_limit", " 5000 / 1h30m "}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"rate_limit": map[string]any{"requests": 5000.0, "window": "1h30m"}}},
		{"user update --proposed", []string{"user", "update", "--org", "acme", "--user", "u-1", "--proposed", `{"role":"viewer","accounts":["act-1"]}`}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"proposed": map[string]any{"role": "viewer", "accounts": []any{"act-1"}}}},
		{"user update --proposed none", []string{"user", "update", "--org", "acme", "--user", "u-1", "--proposed", "none"}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"proposed": nil}},
		{"user update --rate-limit none", []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", "none"}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"rate_limit": nil}},
		{"the API judges the numbers", []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", "0/1d"}, "PATCH", "/orgs/acme/users/u-1", "",
			map[string]any{"rate_limit": map[string]any{"requests": 0.0, "window": "1d"}}},
		{"token create with nothing", []string{"token", "create", "--org", "acme", "--user", "u-1"}, "POST", "/orgs/acme/users/u-1/tokens", "", map[string]any{}},
		{"--expires-in", []string{"token", "create", "--org", "acme", "--user", "u-1", "--expires-in", "720h"}, "POST", "/orgs/acme/users/u-1/tokens", "", map[string]any{"expires_in": "720h"}},
		{"--expires_in", []string{"token", "create", "--org", "acme", "--user", "u-1", "--expires_in", "720h"}, "POST", "/orgs/acme/users/u-1/tokens", "", map[string]any{"expires_in": "720h"}},
		{"rotation", []string{"token", "create", "--org", "acme", "--user", "u-1", "--replaces", "tok-1", "--overlap", "1h"}, "POST", "/orgs/acme/users/u-1/tokens", "",
			map[string]any{"replaces": "tok-1", "overlap": "1h"}},
		{"token revoke", []string{"token", "revoke", "--org", "acme", "--user", "u-1", "--token", "tok-1"}, "DELETE", "/orgs/acme/users/u-1/tokens/tok-1", "", nil},
		{"policy --statements", []string{"policy", "create", "--org", "acme", "--name", "p", "--statements", stmts}, "POST", "/orgs/acme/policies", "",
			map[string]any{"name": "p", "statements": stmtsJSON}},
		{"policy --file list", []string{"policy", "create", "--org", "acme", "--name", "p", "--file", listFile}, "POST", "/orgs/acme/policies", "",
			map[string]any{"name": "p", "statements": stmtsJSON}},
		{"policy --file document, flags override", []string{"policy", "update", "--org", "acme", "--policy", "pol-1", "--file", docFile, "--name", "n"},
			"PUT", "/orgs/acme/policies/pol-1", "", map[string]any{"name": "n", "description": "from the file", "statements": stmtsJSON}},
		{"audit list", []string{"audit", "list", "--org", "acme", "--cursor", "abc"}, "GET", "/orgs/acme/audit", "cursor=abc", nil},
		{"user usage", []string{"user", "usage", "--org", "acme", "--user", "u-1"}, "GET", "/orgs/acme/users/u-1/usage", "", nil},
		{"user usage window", []string{"user", "usage", "--org", "acme", "--user", "u-1", "--from", "2026-12-01T00:00:00Z", "--to", "2026-12-02T00:00:00Z"},
			"GET", "/orgs/acme/users/u-1/usage", "from=2026-12-01T00%3A00%3A00Z&to=2026-12-02T00%3A00%3A00Z", nil},
		{"user advice", []string{"user", "advice", "--org", "acme", "--user", "u-1", "--days", "7"}, "GET", "/orgs/acme/users/u-1/advice", "days=7", nil},
		{"org usage", []string{"org", "usage", "--org", "acme", "--to", "2026-12-02T00:00:00Z"}, "GET", "/orgs/acme/usage", "to=2026-12-02T00%3A00%3A00Z", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t, 200, `{}`)
			r := run(t, nil, append(c.args, "--address", rec.address())...).ok(t)
			if deprecated := slices.Contains(c.args, "--id"); deprecated != strings.Contains(r.stderr, "deprecated") {
				t.Errorf("stderr %q: want a deprecation notice exactly when --id is given", r.stderr)
			}
			got := rec.received()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			req := got[0]
			if req.method != c.method || req.path != "/tokengate"+c.path || req.query != c.query {
				t.Fatalf("sent %s %s?%s, want %s /tokengate%s?%s", req.method, req.path, req.query, c.method, c.path, c.query)
			}
			if origin := req.header.Get("Origin"); origin != rec.URL {
				t.Errorf("Origin %q, want %q: Caddy's admin endpoint expects its own address", origin, rec.URL)
			}
			checkBody(t, req, c.body)
		})
	}
}

func checkBody(t *testing.T, req recorded, want map[string]any) {
	t.Helper()
	if want == nil {
		if len(req.body) != 0 || req.header.Get("Content-Type") != "" {
			t.Fatalf("sent a body %q (%s), want none", req.body, req.header.Get("Content-Type"))
		}
		return
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatalf("body %q: %v", req.body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %s, want %v", req.body, want)
	}
}

// TestURLSendsTheToken: with --url, requests go under the mount's path with
// the token from TOKENGATE_TOKEN, and no Origin.
func TestURLSendsTheToken(t *testing.T) {
	rec := startRecorder(t, 200, `{"id":"acme"}`)
	const tok = "tgp_testtokenthatisnotchecked"
	r := run(t, []string{"TOKENGATE_TOKEN=" + tok}, "org", "get", "--org", "acme", "--url", rec.URL+"/admin/").ok(t)
	if r.field(t, "id") != "acme" {
		t.Fatalf("stdout %q", r.stdout)
	}
	req := rec.received()[0]
	if req.path != "/admin/orgs/acme" || req.header.Get("Authorization") != "Bearer "+tok || req.header.Get("Origin") != "" {
		t.Fatalf("sent %s %s with Authorization %q, Origin %q", req.method, req.path, req.header.Get("Authorization"), req.header.Get("Origin"))
	}
}

// TestUsageMistakes: a command given wrongly exits 1, as Caddy's commands
// do, with a message and a pointer to the help, and sends nothing.
func TestUsageMistakes(t *testing.T) {
	stmts := `[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]`
	listFile := filepath.Join(t.TempDir(), "statements.json")
	writeFile(t, listFile, stmts)
	for _, c := range []struct {
		name string
		env  []string
		args []string // the recorder's --address, or --url, is added
		via  string   // "address", "url", or "" for neither
		want string   // on stderr
	}{
		{"missing flags", nil, []string{"user", "create", "--org", "acme", "--type", "ui"}, "address", "missing required flags --level, --role, --name"},
		{"missing id", nil, []string{"token", "revoke", "--org", "acme", "--user", "u-1"}, "address", "missing required flag --token"},
		{"empty id", nil, []string{"user", "get", "--org", "", "--user", "u-1"}, "address", "missing required flag --org"},
		{"missing statements", nil, []string{"policy", "create", "--org", "acme", "--name", "p"}, "address", "--statements (or --file)"},
		{"statements twice", nil, []string{"policy", "create", "--org", "acme", "--name", "p", "--statements", stmts, "--file", listFile}, "address", "once"},
		{"statements not JSON", nil, []string{"policy", "create", "--org", "acme", "--name", "p", "--statements", "allow GET"}, "address", "JSON list"},
		{"no such file", nil, []string{"policy", "create", "--org", "acme", "--file", "/nonexistent/policy.json"}, "address", "--file"},
		{"nothing to change", nil, []string{"user", "update", "--org", "acme", "--user", "u-1"}, "address", "nothing to change"},
		{"not a number", nil, []string{"audit", "list", "--org", "acme", "--limit", "many"}, "address", "--limit"},
		{"days not a number", nil, []string{"user", "advice", "--org", "acme", "--user", "u-1", "--days", "a week"}, "address", "--days"},
		{"usage without a user", nil, []string{"user", "usage", "--org", "acme"}, "address", "missing required flag --user"},
		{"rate limit without a window", nil, []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", "100"}, "address",
			"--rate-limit must be REQUESTS/WINDOW, such as 100/1m"},
		{"rate limit with an empty window", nil, []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", "100/"}, "address", "REQUESTS/WINDOW"},
		{"rate limit in words", nil, []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", "100 per minute"}, "address", "REQUESTS/WINDOW"},
		{"rate limit's requests not a number", nil, []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate_limit", "many/1m"}, "address", "--rate-limit must be"},
		{"rate limit empty", nil, []string{"user", "update", "--org", "acme", "--user", "u-1", "--rate-limit", ""}, "address", "or none"},
		{"unknown flag", nil, []string{"org", "get", "--org", "acme", "--verbose"}, "address", "unknown flag: --verbose"},
		{"no token flag", []string{"TOKENGATE_TOKEN=tgp_x"}, []string{"org", "get", "--org", "acme", "--token", "tgp_x"}, "url", "unknown flag: --token"},
		{"--org and its alias --id", nil, []string{"org", "create", "--name", "Acme", "--org", "acme", "--id", "acme"}, "address", "give --org once"},
		{"positional argument", nil, []string{"org", "get", "acme"}, "address", `unexpected argument "acme"`},
		{"no subcommand", nil, []string{"user"}, "address", "choose one of: create, list, get, update, delete"},
		{"unknown subcommand", nil, []string{"user", "show"}, "address", `unknown command "show"`},
		{"--url without TOKENGATE_TOKEN", nil, []string{"org", "get", "--org", "acme"}, "url", "TOKENGATE_TOKEN environment variable"},
		{"--url with an empty TOKENGATE_TOKEN", []string{"TOKENGATE_TOKEN= "}, []string{"org", "get", "--org", "acme"}, "url", "TOKENGATE_TOKEN environment variable"},
		{"--url and --address", []string{"TOKENGATE_TOKEN=tgp_x"}, []string{"org", "get", "--org", "acme", "--address", "localhost:2019"}, "url", "not both"},
		{"--url not a URL", []string{"TOKENGATE_TOKEN=tgp_x"}, []string{"org", "get", "--org", "acme", "--url", "gw.example.com/admin"}, "", "--url must be"},
		{"store upgrade on a mount", []string{"TOKENGATE_TOKEN=tgp_x"}, []string{"store", "upgrade"}, "url", "Caddy's admin endpoint only"},
		{"status on a mount", []string{"TOKENGATE_TOKEN=tgp_x"}, []string{"status"}, "url", "Caddy's admin endpoint only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t, 200, `{}`)
			args := c.args
			switch c.via {
			case "address":
				args = append(args, "--address", rec.address())
			case "url":
				args = append(args, "--url", rec.URL+"/admin")
			}
			r := run(t, c.env, args...).failed(t)
			if !strings.Contains(r.stderr, c.want) || r.stdout != "" {
				t.Fatalf("stdout %q, stderr %q; want %q on stderr", r.stdout, r.stderr, c.want)
			}
			if !strings.Contains(r.stderr, "See 'tokengate ") {
				t.Errorf("stderr %q does not point at the help", r.stderr)
			}
			if n := len(rec.received()); n != 0 {
				t.Fatalf("%d requests were sent", n)
			}
		})
	}
}

// TestUnreachable: no admin endpoint at the address exits 1 and says so.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	r := run(t, nil, "org", "get", "--org", "acme", "--address", addr).failed(t)
	if !strings.Contains(r.stderr, "reaching Caddy's admin endpoint at "+addr) {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestAnswersOutsideTheAPI: error answers that are not the API's own shape
// (Caddy's admin endpoint refusing a request, a proxy's page) still reach
// the user, and a redirect is not followed with the token.
func TestAnswersOutsideTheAPI(t *testing.T) {
	for _, c := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"caddy's admin error", `{"error":"host not allowed: example.com"}`, 403, "host not allowed: example.com (HTTP 403)"},
		{"a proxy's page", "<html>Bad Gateway</html>", 502, "<html>Bad Gateway</html> (HTTP 502)"},
		{"a redirect", "", 308, "redirected to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t, c.status, c.body)
			r := run(t, []string{"TOKENGATE_TOKEN=tgp_x"}, "org", "get", "--org", "acme", "--url", rec.URL).failed(t)
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr %q, want %q", r.stderr, c.want)
			}
			if n := len(rec.received()); n != 1 {
				t.Fatalf("%d requests, want 1 (a redirect is not followed)", n)
			}
		})
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
