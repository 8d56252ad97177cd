package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/admin"
)

// TestRoutesOnBothMounts runs every route of the API once through Caddy's
// admin endpoint (the operator) and once through tokengate_admin (an
// organization admin's token).
func TestRoutesOnBothMounts(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	for _, mount := range []struct{ name, tok string }{{"admin endpoint", ""}, {"tokengate_admin", w.orgAdmin}} {
		t.Run(mount.name, func(t *testing.T) {
			tok, org := mount.tok, w.org
			if tok == "" {
				e.must(e.call(tok, "POST", "/orgs", map[string]string{"name": "Initech"}), 201)
			} else {
				e.must(e.call(tok, "POST", "/orgs", map[string]string{"name": "Initech"}), 403)
			}
			e.must(e.call(tok, "GET", "/orgs/"+org, nil), 200)
			act := e.must(e.call(tok, "POST", "/orgs/"+org+"/accounts", map[string]string{"name": "staging"}), 201).field(t, "id")
			e.must(e.call(tok, "GET", "/orgs/"+org+"/accounts", nil), 200)
			e.must(e.call(tok, "GET", "/orgs/"+org+"/accounts/"+act, nil), 200)
			doc := map[string]any{"name": "read", "account": act, "statements": []map[string]any{
				{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/api/*"}}}}
			pol := e.must(e.call(tok, "POST", "/orgs/"+org+"/policies", doc), 201).field(t, "id")
			e.must(e.call(tok, "GET", "/orgs/"+org+"/policies", nil), 200)
			e.must(e.call(tok, "GET", "/orgs/"+org+"/policies/"+pol, nil), 200)
			doc["name"] = "read all"
			e.must(e.call(tok, "PUT", "/orgs/"+org+"/policies/"+pol, doc), 200)
			created := e.must(e.call(tok, "POST", "/orgs/"+org+"/users", map[string]any{"type": "programmatic", "level": "account",
				"account": act, "role": "policy", "policies": []string{pol}, "name": "ci", "description": "deploys"}), 201)
			user := created.field(t, "user", "id")
			first := created.field(t, "token", "secret")
			if !strings.HasPrefix(first, "tgp_") {
				t.Fatalf("first token %q", first)
			}
			e.must(e.call(tok, "GET", "/orgs/"+org+"/users", nil), 200)
			e.must(e.call(tok, "GET", "/orgs/"+org+"/users/"+user, nil), 200)
			e.must(e.call(tok, "PATCH", "/orgs/"+org+"/users/"+user, map[string]any{"description": "deploys prod"}), 200)
			tokID := e.must(e.call(tok, "POST", "/orgs/"+org+"/users/"+user+"/tokens", map[string]any{"name": "second"}), 201).field(t, "id")
			e.must(e.call(tok, "GET", "/orgs/"+org+"/users/"+user+"/tokens", nil), 200)
			e.must(e.call(tok, "DELETE", "/orgs/"+org+"/users/"+user+"/tokens/"+tokID, nil), 204)
			e.must(e.call(tok, "GET", "/orgs/"+org+"/audit", nil), 200)
			e.must(e.call(tok, "DELETE", "/orgs/"+org+"/users/"+user, nil), 204)
			e.must(e.call(tok, "DELETE", "/orgs/"+org+"/policies/"+pol, nil), 204)
			e.must(e.call(tok, "DELETE", "/orgs/"+org+"/accounts/"+act, nil), 204)
			// Unknown paths and methods.
			if r := e.call(tok, "GET", "/nope", nil); r.status != 404 || r.code != "not_found" {
				t.Fatalf("unknown path: %d %s", r.status, r.body)
			}
			if r := e.call(tok, "PUT", "/orgs/"+org, nil); r.status != 405 || r.header.Get("Allow") != "GET, PATCH" {
				t.Fatalf("wrong method: %d %v", r.status, r.header)
			}
		})
	}
}

// TestAuthorizationMatrix: actor × action × target → status, including every
// escalation we could think of.
func TestAuthorizationMatrix(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	newA1User := func() string {
		id, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
		return id
	}
	acctUser := func(account string, extra map[string]any) map[string]any {
		body := map[string]any{"type": "programmatic", "level": "account", "account": account, "role": "viewer", "name": "x"}
		for k, v := range extra {
			body[k] = v
		}
		return body
	}
	stmts := []map[string]any{{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/x"}}}
	tests := []struct {
		name   string
		actor  string
		method string
		path   func() string
		body   any
		want   int
	}{
		// Creating organizations: the operator alone.
		{"org admin creates an org", w.orgAdmin, "POST", func() string { return "/orgs" }, map[string]string{"name": "x"}, 403},
		{"account admin creates an org", w.acctAdminA1, "POST", func() string { return "/orgs" }, map[string]string{"name": "x"}, 403},

		// Who may call at all.
		{"no token", "", "GET", func() string { return o }, nil, 0},
		{"viewer reads the org", w.viewerA1, "GET", func() string { return o }, nil, 403},
		{"editor lists users", w.editorA1, "GET", func() string { return o + "/users" }, nil, 403},
		{"editor creates a user", w.editorA1, "POST", func() string { return o + "/users" }, acctUser(w.a1, nil), 403},
		{"editor makes itself admin", w.editorA1, "PATCH", func() string { return o + "/users/" + newA1User() }, map[string]any{"role": "admin"}, 403},
		{"org viewer reads users", w.orgViewerTok, "GET", func() string { return o + "/users" }, nil, 403},
		{"disabled admin", w.disabledAdmin, "GET", func() string { return o }, nil, 401},

		// Organization admins: everything in their org, nothing elsewhere.
		{"org admin reads its org", w.orgAdmin, "GET", func() string { return o }, nil, 200},
		{"UI org admin lists users", w.orgAdminUI, "GET", func() string { return o + "/users" }, nil, 200},
		{"org admin creates an org-level user", w.orgAdmin, "POST", func() string { return o + "/users" },
			map[string]any{"type": "programmatic", "level": "organization", "accounts": []string{w.a1, w.a2}, "role": "admin", "name": "x"}, 201},
		{"org admin grants another org's account", w.orgAdmin, "POST", func() string { return o + "/users" },
			map[string]any{"type": "programmatic", "level": "organization", "accounts": []string{w.g1}, "role": "viewer", "name": "x"}, 400},
		{"org admin reads another org", w.orgAdmin, "GET", func() string { return "/orgs/" + w.other }, nil, 403},
		{"org admin creates a user in another org", w.orgAdmin, "POST", func() string { return "/orgs/" + w.other + "/users" }, acctUser(w.g1, nil), 403},
		{"other org's admin lists our users", w.otherOrgAdmin, "GET", func() string { return o + "/users" }, nil, 403},
		{"other org's admin deletes our user", w.otherOrgAdmin, "DELETE", func() string { return o + "/users/" + w.userA1 }, nil, 403},
		{"org admin deletes an account", w.orgAdmin, "DELETE", func() string {
			return o + "/accounts/" + e.must(e.call("", "POST", o+"/accounts", map[string]string{"name": "tmp"}), 201).field(t, "id")
		}, nil, 204},

		// Account admins: account-level users and policies of their account.
		{"account admin reads the org", w.acctAdminA1, "GET", func() string { return o }, nil, 200},
		{"account admin reads its account", w.acctAdminA1, "GET", func() string { return o + "/accounts/" + w.a1 }, nil, 200},
		{"account admin reads another account", w.acctAdminA1, "GET", func() string { return o + "/accounts/" + w.a2 }, nil, 403},
		{"account admin creates an account", w.acctAdminA1, "POST", func() string { return o + "/accounts" }, map[string]string{"name": "x"}, 403},
		{"account admin deletes its account", w.acctAdminA1, "DELETE", func() string { return o + "/accounts/" + w.a1 }, nil, 403},
		{"account admin creates a user in its account", w.acctAdminA1, "POST", func() string { return o + "/users" }, acctUser(w.a1, nil), 201},
		{"account admin creates an admin in its account", w.acctAdminA1, "POST", func() string { return o + "/users" }, acctUser(w.a1, map[string]any{"role": "admin"}), 201},
		{"account admin creates a user, account implied", w.acctAdminA1, "POST", func() string { return o + "/users" },
			map[string]any{"type": "programmatic", "level": "account", "role": "viewer", "name": "x"}, 201},
		{"account admin creates an org-level user", w.acctAdminA1, "POST", func() string { return o + "/users" },
			map[string]any{"type": "programmatic", "level": "organization", "accounts": []string{w.a1}, "role": "viewer", "name": "x"}, 403},
		{"account admin creates a user in another account", w.acctAdminA1, "POST", func() string { return o + "/users" }, acctUser(w.a2, nil), 403},
		// Another account's policy fits no user of this account: the store
		// refuses it in the transaction that writes, for every caller.
		{"account admin grants another account's policy", w.acctAdminA1, "POST", func() string { return o + "/users" },
			acctUser(w.a1, map[string]any{"role": "policy", "policies": []string{w.polA2}}), 400},
		{"account admin grants its account's policy", w.acctAdminA1, "POST", func() string { return o + "/users" },
			acctUser(w.a1, map[string]any{"role": "policy", "policies": []string{w.polA1}}), 201},
		{"account admin grants an org-wide policy", w.acctAdminA1, "POST", func() string { return o + "/users" },
			acctUser(w.a1, map[string]any{"role": "policy", "policies": []string{w.polOrg}}), 201},
		{"account admin patches a user to another account's policy", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + newA1User() },
			map[string]any{"role": "policy", "policies": []string{w.polA2}}, 400},
		{"account admin widens a user to accounts", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + newA1User() },
			map[string]any{"accounts": []string{w.a1, w.a2}}, 400},
		{"account admin patches itself to organization level", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + w.acctAdminA1ID },
			map[string]any{"level": "organization"}, 400},
		{"account admin patches itself to another account", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + w.acctAdminA1ID },
			map[string]any{"account": w.a2}, 400},
		{"account admin renames itself", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + w.acctAdminA1ID },
			map[string]any{"name": "renamed"}, 200},
		{"account admin patches a user of another account", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + w.userA2 },
			map[string]any{"role": "admin"}, 403},
		{"account admin patches an org-level user", w.acctAdminA1, "PATCH", func() string { return o + "/users/" + w.orgViewer },
			map[string]any{"disabled": true}, 403},
		{"account admin deletes an org admin", w.acctAdminA1, "DELETE", func() string { return o + "/users/" + w.orgAdminID }, nil, 403},
		{"account admin deletes a user of another account", w.acctAdminA1, "DELETE", func() string { return o + "/users/" + w.userA2 }, nil, 403},
		{"account admin deletes a user of its account", w.acctAdminA1, "DELETE", func() string { return o + "/users/" + newA1User() }, nil, 204},
		{"account admin reads an org-level user", w.acctAdminA1, "GET", func() string { return o + "/users/" + w.orgViewer }, nil, 403},
		{"account admin lists another account's users", w.acctAdminA1, "GET", func() string { return o + "/users?account=" + w.a2 }, nil, 403},
		{"account admin creates a token for another account's user", w.acctAdminA1, "POST", func() string { return o + "/users/" + w.userA2 + "/tokens" },
			map[string]any{}, 403},
		{"account admin creates a token for an org admin", w.acctAdminA1, "POST", func() string { return o + "/users/" + w.orgAdminID + "/tokens" },
			map[string]any{}, 403},
		{"account admin lists an org admin's tokens", w.acctAdminA1, "GET", func() string { return o + "/users/" + w.orgAdminID + "/tokens" }, nil, 403},
		{"account admin creates a token for its user", w.acctAdminA1, "POST", func() string { return o + "/users/" + w.userA1 + "/tokens" },
			map[string]any{}, 201},
		{"account admin creates a policy in its account", w.acctAdminA1, "POST", func() string { return o + "/policies" },
			map[string]any{"name": "p", "statements": stmts}, 201},
		{"account admin creates a policy in another account", w.acctAdminA1, "POST", func() string { return o + "/policies" },
			map[string]any{"name": "p", "account": w.a2, "statements": stmts}, 403},
		{"account admin reads an org-wide policy", w.acctAdminA1, "GET", func() string { return o + "/policies/" + w.polOrg }, nil, 200},
		{"account admin reads another account's policy", w.acctAdminA1, "GET", func() string { return o + "/policies/" + w.polA2 }, nil, 403},
		{"account admin edits an org-wide policy", w.acctAdminA1, "PUT", func() string { return o + "/policies/" + w.polOrg },
			map[string]any{"name": "p", "statements": stmts}, 403},
		{"account admin edits another account's policy", w.acctAdminA1, "PUT", func() string { return o + "/policies/" + w.polA2 },
			map[string]any{"name": "p", "statements": stmts}, 403},
		{"account admin moves its policy to another account", w.acctAdminA1, "PUT", func() string { return o + "/policies/" + w.polA1 },
			map[string]any{"name": "p", "account": w.a2, "statements": stmts}, 403},
		{"account admin deletes another account's policy", w.acctAdminA1, "DELETE", func() string { return o + "/policies/" + w.polA2 }, nil, 403},
		{"account admin deletes an org-wide policy", w.acctAdminA1, "DELETE", func() string { return o + "/policies/" + w.polOrg }, nil, 403},
		{"account admin reads the audit", w.acctAdminA1, "GET", func() string { return o + "/audit" }, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.actor, tt.method, tt.path(), tt.body)
			if tt.actor == "" {
				// "no token": sent to tokengate_admin without one.
				r = e.send("", tt.method, e.siteURL+"/admin"+tt.path(), tt.body, "application/json")
				tt.want = 401
				// RFC 6750 §3.1: no error code when no credential was sent.
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate"` {
					t.Errorf("WWW-Authenticate %q without a token", got)
				}
				bad := e.send("tgp_nope", tt.method, e.siteURL+"/admin"+tt.path(), tt.body, "application/json")
				if got := bad.header.Get("WWW-Authenticate"); bad.status != 401 || got != `Bearer realm="tokengate", error="invalid_token"` {
					t.Errorf("a token that is not one: %d, WWW-Authenticate %q", bad.status, got)
				}
			}
			if r.status != tt.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
			}
		})
	}

	t.Run("account admin's listings hold only its account", func(t *testing.T) {
		var users struct {
			Users []struct{ Level, Account string }
		}
		e.must(e.call(w.acctAdminA1, "GET", o+"/users", nil), 200).json(t, &users)
		if len(users.Users) == 0 {
			t.Fatal("no users listed")
		}
		for _, u := range users.Users {
			if u.Level != "account" || u.Account != w.a1 {
				t.Fatalf("account admin sees %+v", u)
			}
		}
		var accounts struct{ Accounts []struct{ ID string } }
		e.must(e.call(w.acctAdminA1, "GET", o+"/accounts", nil), 200).json(t, &accounts)
		if len(accounts.Accounts) != 1 || accounts.Accounts[0].ID != w.a1 {
			t.Fatalf("account admin sees accounts %+v", accounts.Accounts)
		}
		var policies struct {
			Policies []struct{ ID, Account string }
		}
		e.must(e.call(w.acctAdminA1, "GET", o+"/policies", nil), 200).json(t, &policies)
		for _, p := range policies.Policies {
			if p.Account != "" && p.Account != w.a1 {
				t.Fatalf("account admin sees policy %+v", p)
			}
		}
		var events struct{ Events []struct{ Account string } }
		e.must(e.call(w.acctAdminA1, "GET", o+"/audit", nil), 200).json(t, &events)
		if len(events.Events) == 0 {
			t.Fatal("no events")
		}
		for _, ev := range events.Events {
			if ev.Account != w.a1 {
				t.Fatalf("account admin sees an event of account %q", ev.Account)
			}
		}
	})

	t.Run("a refused grant does not name the other account", func(t *testing.T) {
		r := e.call(w.acctAdminA1, "POST", o+"/users", acctUser(w.a1, map[string]any{"role": "policy", "policies": []string{w.polA2}}))
		if r.status != 400 || r.code != "invalid_request" || strings.Contains(string(r.body), w.a2) {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})

	t.Run("a programmatic admin is still refused on UI routes", func(t *testing.T) {
		if r := e.gateway(w.orgAdmin, "/ui/home"); r.status != 403 || r.code != "programmatic_ui_forbidden" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if r := e.gateway(w.orgAdminUI, "/ui/home"); r.status != 200 {
			t.Fatalf("UI admin on the UI: %d %s", r.status, r.body)
		}
	})
}

// TestValidation: bad input is a 400 naming the field (or 404, 409, 413),
// never a 500.
func TestValidation(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	user := func(extra map[string]any, drop ...string) map[string]any {
		body := map[string]any{"type": "programmatic", "level": "account", "account": w.a1, "role": "viewer", "name": "x"}
		for k, v := range extra {
			body[k] = v
		}
		for _, k := range drop {
			delete(body, k)
		}
		return body
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		field  string // must appear in the message
	}{
		{"unknown field", "POST", o + "/users", user(map[string]any{"superuser": true}), 400, "superuser"},
		{"wrong type", "POST", o + "/users", user(map[string]any{"role": 3}), 400, "role"},
		{"wrong list type", "POST", o + "/users", user(map[string]any{"policies": "pol-1"}), 400, "policies"},
		{"null", "POST", o + "/users", user(map[string]any{"description": nil}), 400, "description"},
		{"missing name", "POST", o + "/users", user(nil, "name"), 400, "name"},
		{"missing type", "POST", o + "/users", user(nil, "type"), 400, "type"},
		{"bad type", "POST", o + "/users", user(map[string]any{"type": "robot"}), 400, "type"},
		{"policies without policy role", "POST", o + "/users", user(map[string]any{"policies": []string{w.polA1}}), 400, "policies"},
		{"policy role without policies", "POST", o + "/users", user(map[string]any{"role": "policy"}), 400, "policies"},
		{"unknown account", "POST", o + "/users", user(map[string]any{"account": "act-00000000"}), 400, "account"},
		{"malformed account", "POST", o + "/users", user(map[string]any{"account": "../../x"}), 400, "account"},
		{"another org's account", "POST", o + "/users", user(map[string]any{"account": w.g1}), 400, "account"},
		{"unknown policy", "POST", o + "/users", user(map[string]any{"role": "policy", "policies": []string{"pol-00000000"}}), 400, "policies"},
		{"long name", "POST", o + "/users", user(map[string]any{"name": strings.Repeat("n", 129)}), 400, "name"},
		{"long description", "POST", o + "/users", user(map[string]any{"description": strings.Repeat("d", 1025)}), 400, "description"},
		{"UI user without email", "POST", o + "/users", user(map[string]any{"type": "ui"}), 400, "email"},
		{"UI user bad email", "POST", o + "/users", user(map[string]any{"type": "ui", "email": "nobody"}), 400, "email"},
		{"not an object", "POST", o + "/users", `["type"]`, 400, "body"},
		{"not JSON", "POST", o + "/users", `{"type": `, 400, "body"},
		{"trailing data", "POST", o + "/users", `{"name":"x"} {"name":"y"}`, 400, "body"},
		{"repeated key", "POST", o + "/users", `{"type":"programmatic","role":"viewer","role":"admin"}`, 400, "role"},
		{"empty body", "POST", o + "/users", ``, 400, "body"},
		{"statement unknown field", "POST", o + "/policies", map[string]any{"name": "p", "statements": []map[string]any{
			{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/"}, "when": "always"}}}, 400, "statements"},
		{"statement bad effect", "POST", o + "/policies", map[string]any{"name": "p", "statements": []map[string]any{
			{"effect": "maybe", "methods": []string{"GET"}, "paths": []string{"/"}}}}, 400, "effect"},
		{"statement bad path", "POST", o + "/policies", map[string]any{"name": "p", "statements": []map[string]any{
			{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/a/**/b"}}}}, 400, "paths"},
		// Statements are read as strictly as the body: exact names, each
		// once, no null; a refusal names the statement's member.
		{"statement name in capitals", "POST", o + "/policies",
			`{"name":"x","statements":[{"EFFECT":"allow","methods":["GET"],"paths":["/"]}]}`, 400, "statements[0].EFFECT is not a field"},
		{"statement effect twice", "POST", o + "/policies",
			`{"name":"x","statements":[{"effect":"deny","effect":"allow","methods":["GET"],"paths":["/"]}]}`, 400, "statements[0].effect is given more than once"},
		{"statement effect in two cases", "PUT", o + "/policies/" + w.polA1,
			`{"name":"x","statements":[{"effect":"deny","Effect":"allow","methods":["GET"],"paths":["/"]}]}`, 400, "statements[0].Effect is not a field"},
		{"statement null member", "POST", o + "/policies",
			`{"name":"x","statements":[{"effect":"allow","methods":["GET"],"paths":["/"],"paths":null}]}`, 400, "statements[0].paths is given more than once"},
		{"statement null methods", "POST", o + "/policies",
			`{"name":"x","statements":[{"effect":"allow","methods":null,"paths":["/"]}]}`, 400, "statements[0].methods must not be null"},
		{"null statement", "POST", o + "/policies",
			`{"name":"x","statements":[{"effect":"allow","methods":["GET"],"paths":["/"]},null]}`, 400, "statements[1] must not be null"},
		{"null in a list", "POST", o + "/users", user(map[string]any{"level": "organization", "account": "", "accounts": []any{w.a1, nil}}), 400, "accounts[1] must not be null"},
		{"null event", "POST", o + "/webhooks", `{"url":"https://example.com/hook","events":["*",null]}`, 400, "events[1] must not be null"},
		{"empty patch", "PATCH", o + "/users/" + w.userA1, map[string]any{}, 400, "body"},
		{"patch a field that is not patchable", "PATCH", o + "/users/" + w.userA1, map[string]any{"type": "ui"}, 400, "type"},
		{"bad expires_in", "POST", o + "/users/" + w.userA1 + "/tokens", map[string]any{"expires_in": "soon"}, 400, "expires_in"},
		{"negative expires_in", "POST", o + "/users/" + w.userA1 + "/tokens", map[string]any{"expires_in": "-1h"}, 400, "expires_in"},
		{"overlap without replaces", "POST", o + "/users/" + w.userA1 + "/tokens", map[string]any{"overlap": "1h"}, 400, "overlap"},
		{"replaces an unknown token", "POST", o + "/users/" + w.userA1 + "/tokens", map[string]any{"replaces": "tok-000000000000"}, 400, "replaces"},
		{"limit zero", "GET", o + "/users?limit=0", nil, 400, "limit"},
		{"limit too high", "GET", o + "/users?limit=1001", nil, 400, "limit"},
		{"limit not a number", "GET", o + "/audit?limit=ten", nil, 400, "limit"},
		{"bad type filter", "GET", o + "/users?type=robot", nil, 400, "type"},
		{"bad cursor", "GET", o + "/users?cursor=!!!", nil, 400, "cursor"},
		{"bad query string", "GET", o + "/users?cursor=%%%", nil, 400, "query"},
		{"forged cursor", "GET", o + "/audit?cursor=Zm9v", nil, 400, "cursor"},
		{"unknown audit action", "GET", o + "/audit?action=token.steal", nil, 400, "action"},
		{"audit since not a time", "GET", o + "/audit?since=yesterday", nil, 400, "since"},
		{"audit until not a time", "GET", o + "/audit?until=2026-13-01T00:00:00Z", nil, 400, "until"},
		{"unknown parameter", "GET", o + "/users?sort=name", nil, 400, "sort"},
		{"repeated parameter", "GET", o + "/users?limit=1&limit=2", nil, 400, "limit"},
		{"unknown org", "GET", "/orgs/nope", nil, 404, "nope"},
		{"malformed org", "GET", "/orgs/NOPE!", nil, 404, ""},
		{"unknown user", "GET", o + "/users/u-000000000000", nil, 404, "u-000000000000"},
		{"malformed user", "DELETE", o + "/users/U-ZZZ", nil, 404, "U-ZZZ"},
		{"unknown token", "DELETE", o + "/users/" + w.userA1 + "/tokens/tok-000000000000", nil, 404, "tok-000000000000"},
		{"unknown policy", "PUT", o + "/policies/pol-00000000", map[string]any{"name": "p", "statements": []map[string]any{
			{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/"}}}}, 404, "pol-00000000"},
		{"duplicate org", "POST", "/orgs", map[string]string{"id": w.org, "name": "again"}, 409, w.org},
		{"duplicate account", "POST", o + "/accounts", map[string]string{"id": w.a1, "name": "again"}, 409, w.a1},
		{"account still in use", "DELETE", o + "/accounts/" + w.a1, nil, 409, w.a1},
		{"policy still held", "DELETE", o + "/policies/" + w.polA1, nil, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("", tt.method, tt.path, tt.body)
			if r.status != tt.status || (tt.status == 400 && r.code != "invalid_request") || !strings.Contains(string(r.body), tt.field) {
				t.Fatalf("got %d %s, want %d naming %q", r.status, r.body, tt.status, tt.field)
			}
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		big := fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", admin.MaxBody))
		r := e.call("", "POST", o+"/accounts", big)
		if r.status != 413 || r.code != "payload_too_large" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("not declared as JSON", func(t *testing.T) {
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"} {
			r := e.send("", "POST", e.adminURL+o+"/accounts", `{"name":"x"}`, ct)
			if r.status != 400 || !strings.Contains(string(r.body), "Content-Type") {
				t.Fatalf("%q: got %d %s", ct, r.status, r.body)
			}
		}
	})
	t.Run("nothing is written by refused requests", func(t *testing.T) {
		var users struct{ Users []struct{ Name string } }
		e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &users)
		for _, u := range users.Users {
			if u.Name == "x" {
				t.Fatal("a refused request created a user")
			}
		}
		var policies struct{ Policies []struct{ Name string } }
		e.must(e.call("", "GET", o+"/policies", nil), 200).json(t, &policies)
		for _, p := range policies.Policies {
			if p.Name == "x" {
				t.Fatal("a refused request created or replaced a policy")
			}
		}
	})
}

// TestTokenLifecycle: first token at creation, more tokens, listing without
// secrets, rotation with overlap, revocation refused at once, last use.
func TestTokenLifecycle(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	created := e.must(e.call("", "POST", o+"/users", map[string]any{"type": "programmatic", "level": "account",
		"account": w.a1, "role": "viewer", "name": "ci"}), 201)
	user, first := created.field(t, "user", "id"), created.field(t, "token", "secret")
	firstID := created.field(t, "token", "id")
	if r := e.gateway(first, "/api/x"); r.status != 200 {
		t.Fatalf("first token: %d %s", r.status, r.body)
	}

	// A UI user gets no token at creation, and tgu_ tokens on request.
	ui := e.must(e.call("", "POST", o+"/users", map[string]any{"type": "ui", "level": "account", "account": w.a1,
		"role": "viewer", "name": "Bo", "email": "bo@example.com"}), 201)
	if strings.Contains(string(ui.body), `"token"`) {
		t.Fatalf("UI user created with a token: %s", ui.body)
	}
	personal := e.must(e.call("", "POST", o+"/users/"+ui.field(t, "user", "id")+"/tokens", map[string]any{"expires_in": "720h"}), 201)
	if !strings.HasPrefix(personal.field(t, "secret"), "tgu_") || personal.field(t, "expires_at") == "" {
		t.Fatalf("personal token: %s", personal.body)
	}

	// Listing: hint, times, never a secret.
	e.gateway(first, "/api/x")
	e.flushUse()
	list := e.must(e.call("", "GET", o+"/users/"+user+"/tokens", nil), 200)
	if strings.Contains(string(list.body), first[4:44]) || strings.Contains(string(list.body), `"secret"`) {
		t.Fatalf("listing shows a secret: %s", list.body)
	}
	var toks struct {
		Tokens []map[string]any
	}
	list.json(t, &toks)
	tk := toks.Tokens[0]
	for _, k := range []string{"id", "name", "hint", "created_at", "expires_at", "last_used_at"} {
		if _, ok := tk[k]; !ok {
			t.Fatalf("listing lacks %s: %s", k, list.body)
		}
	}
	if tk["hint"] != first[:4]+"…"+first[len(first)-4:] || tk["last_used_at"] == nil {
		t.Fatalf("listing: %s", list.body)
	}

	// Rotation with a 3 s overlap: both work at once; the old one stops
	// after the overlap, not before.
	rotatedAt := time.Now()
	second := e.must(e.call("", "POST", o+"/users/"+user+"/tokens", map[string]any{"replaces": firstID, "overlap": "3s"}), 201).field(t, "secret")
	if r := e.gateway(first, "/api/x"); r.status != 200 {
		t.Fatalf("old token within the overlap: %d", r.status)
	}
	if r := e.gateway(second, "/api/x"); r.status != 200 {
		t.Fatalf("new token: %d", r.status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r := e.gateway(first, "/api/x"); r.status == 200; r = e.gateway(first, "/api/x") {
		if time.Now().After(deadline) {
			t.Fatal("old token still works 10 s after a 3 s overlap")
		}
		time.Sleep(50 * time.Millisecond) // polling interval while the clock runs out
	}
	if elapsed := time.Since(rotatedAt); elapsed < 2900*time.Millisecond {
		t.Fatalf("old token stopped after %s, before the overlap", elapsed)
	}
	if r := e.gateway(first, "/api/x"); r.code != "expired_token" {
		t.Fatalf("old token after the overlap: %d %s", r.status, r.body)
	}

	// Revocation: refused by the time the API answers.
	var listed struct{ Tokens []struct{ ID string } }
	e.must(e.call("", "GET", o+"/users/"+user+"/tokens", nil), 200).json(t, &listed)
	for _, tk := range listed.Tokens {
		e.must(e.call("", "DELETE", o+"/users/"+user+"/tokens/"+tk.ID, nil), 204)
	}
	if r := e.gateway(second, "/api/x"); r.status != 401 {
		t.Fatalf("revoked token: %d %s", r.status, r.body)
	}
}

// TestAuditCompleteness: every mutating route writes exactly one event with
// the right action, actor and target; refused requests write none.
func TestAuditCompleteness(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	count := func() int {
		var ev struct{ Events []struct{ Action string } }
		e.must(e.call("", "GET", o+"/audit?limit=1000", nil), 200).json(t, &ev)
		return len(ev.Events)
	}
	last := func() map[string]any {
		var ev struct{ Events []map[string]any }
		e.must(e.call("", "GET", o+"/audit?limit=1", nil), 200).json(t, &ev)
		return ev.Events[0]
	}
	stmts := []map[string]any{{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/x"}}}
	var act, pol, user, tok string
	steps := []struct {
		action string
		do     func() resp
		target func() string
	}{
		{"account.create", func() resp { return e.call(w.orgAdmin, "POST", o+"/accounts", map[string]string{"name": "n"}) }, func() string { return act }},
		{"policy.create", func() resp {
			return e.call(w.orgAdmin, "POST", o+"/policies", map[string]any{"name": "p", "account": act, "statements": stmts})
		}, func() string { return pol }},
		{"policy.update", func() resp {
			return e.call(w.orgAdmin, "PUT", o+"/policies/"+pol, map[string]any{"name": "q", "account": act, "statements": stmts})
		}, func() string { return pol }},
		{"user.create", func() resp {
			return e.call(w.orgAdmin, "POST", o+"/users", map[string]any{"type": "programmatic", "level": "account", "account": act, "role": "viewer", "name": "u"})
		}, func() string { return user }},
		{"user.update", func() resp { return e.call(w.orgAdmin, "PATCH", o+"/users/"+user, map[string]any{"name": "v"}) }, func() string { return user }},
		{"token.create", func() resp { return e.call(w.orgAdmin, "POST", o+"/users/"+user+"/tokens", map[string]any{}) }, func() string { return tok }},
		{"token.revoke", func() resp { return e.call(w.orgAdmin, "DELETE", o+"/users/"+user+"/tokens/"+tok, nil) }, func() string { return tok }},
		{"user.delete", func() resp { return e.call(w.orgAdmin, "DELETE", o+"/users/"+user, nil) }, func() string { return user }},
		{"policy.delete", func() resp { return e.call(w.orgAdmin, "DELETE", o+"/policies/"+pol, nil) }, func() string { return pol }},
		{"account.delete", func() resp { return e.call(w.orgAdmin, "DELETE", o+"/accounts/"+act, nil) }, func() string { return act }},
	}
	for _, st := range steps {
		before := count()
		r := st.do()
		if r.status >= 300 {
			t.Fatalf("%s: %d %s", st.action, r.status, r.body)
		}
		switch st.action {
		case "account.create":
			act = r.field(t, "id")
		case "policy.create":
			pol = r.field(t, "id")
		case "user.create":
			user = r.field(t, "user", "id")
		case "token.create":
			tok = r.field(t, "id")
		}
		if got := count() - before; got != 1 {
			t.Fatalf("%s wrote %d events", st.action, got)
		}
		ev := last()
		actor, _ := ev["actor"].(map[string]any)
		if ev["action"] != st.action || ev["target"] != st.target() || actor["type"] != "programmatic" || actor["id"] == "" {
			t.Fatalf("%s: event %v", st.action, ev)
		}
		if strings.Contains(fmt.Sprint(ev), "tgp_") {
			t.Fatalf("event holds a secret: %v", ev)
		}
	}
	// The operator's changes are attributed to the operator.
	e.must(e.call("", "POST", "/orgs", map[string]string{"id": "third", "name": "Third"}), 201)
	var ev struct{ Events []map[string]any }
	e.must(e.call("", "GET", "/orgs/third/audit", nil), 200).json(t, &ev)
	if a, _ := ev.Events[0]["actor"].(map[string]any); a["type"] != "operator" || ev.Events[0]["action"] != "org.create" {
		t.Fatalf("operator event %v", ev.Events[0])
	}
	// Refused changes write nothing.
	before := count()
	e.call(w.acctAdminA1, "DELETE", o+"/users/"+w.orgAdminID, nil)
	e.call("", "POST", o+"/users", map[string]any{"type": "robot"})
	e.call("", "DELETE", o+"/accounts/"+w.a1, nil)
	if count() != before {
		t.Fatal("a refused change wrote an event")
	}

	// Paging through the audit: newest first, no repeats, cursor opaque.
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		path := o + "/audit?limit=4"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page struct {
			Events []struct {
				Time   time.Time
				Target string
				Action string
			}
			NextCursor string `json:"next_cursor"`
		}
		e.must(e.call("", "GET", path, nil), 200).json(t, &page)
		for i, ev := range page.Events {
			key := ev.Time.String() + ev.Action + ev.Target
			if seen[key] {
				t.Fatalf("event repeated: %v", ev)
			}
			seen[key] = true
			if i > 0 && ev.Time.After(page.Events[i-1].Time) {
				t.Fatal("events not newest first")
			}
		}
		pages++
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != before || pages < 2 {
		t.Fatalf("paged %d events in %d pages, want %d", len(seen), pages, before)
	}
}

// TestConcurrentAdmins: 10 admins create 50 users at once: 50 users, 50
// events, nothing lost.
func TestConcurrentAdmins(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	admins := make([]string, 10)
	for i := range admins {
		_, admins[i] = e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin", "name": fmt.Sprint("admin", i)})
	}
	var before struct{ Users []struct{ ID string } }
	e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &before)
	countCreates := func() int {
		var ev struct{ Events []struct{ Action string } }
		e.must(e.call("", "GET", o+"/audit?limit=1000", nil), 200).json(t, &ev)
		n := 0
		for _, x := range ev.Events {
			if x.Action == "user.create" {
				n++
			}
		}
		return n
	}
	createsBefore := countCreates()
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			r := e.call(admins[i%10], "POST", o+"/users", map[string]any{"type": "programmatic", "level": "account",
				"account": w.a1, "role": "viewer", "name": fmt.Sprint("concurrent-", i)})
			if r.status != 201 {
				errs <- fmt.Sprintf("%d %s", r.status, r.body)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var after struct{ Users []struct{ ID, Name string } }
	e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &after)
	names := map[string]bool{}
	for _, u := range after.Users {
		if strings.HasPrefix(u.Name, "concurrent-") {
			names[u.Name] = true
		}
	}
	if len(after.Users)-len(before.Users) != 50 || len(names) != 50 {
		t.Fatalf("%d users created, %d distinct", len(after.Users)-len(before.Users), len(names))
	}
	if got := countCreates() - createsBefore; got != 50 {
		t.Fatalf("%d user.create events for 50 users", got)
	}
}

// TestStoreDown: with etcd away, admin calls answer 503 store_unavailable.
func TestStoreDown(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	e.etcd.Stop()
	defer e.etcd.Restart()
	for _, r := range []resp{
		e.call("", "POST", "/orgs/"+w.org+"/accounts", map[string]string{"name": "x"}),
		e.call("", "GET", "/orgs/"+w.org+"/users", nil),
		e.call(w.orgAdmin, "GET", "/orgs/"+w.org, nil), // cached admin identity, store down
	} {
		if r.status != http.StatusServiceUnavailable || r.code != "store_unavailable" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	}
}
