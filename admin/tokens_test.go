package admin_test

import (
	"strings"
	"testing"
)

// TestPersonalTokens: a UI user's personal tokens (tgu_) are created only
// by the operator, by the user itself or by a UI admin who manages the
// user; programmatic callers are refused whatever their role, so no
// programmatic credential leads to the UI. A UI user may also list and
// revoke its own tokens, and nothing else opens up for it.
func TestPersonalTokens(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	uiUser := func(fields map[string]any) (string, string) {
		body := map[string]any{"type": "ui", "role": "viewer", "name": "someone", "email": "someone@example.com"}
		for k, v := range fields {
			body[k] = v
		}
		id := e.must(e.call("", "POST", o+"/users", body), 201).field(t, "user", "id")
		tok := e.must(e.call("", "POST", o+"/users/"+id+"/tokens", map[string]any{"name": "browser"}), 201).field(t, "secret")
		return id, tok
	}
	anaID := e.must(e.send(w.orgAdminUI, "GET", e.siteURL+"/admin/console/api/whoami", nil, ""), 200).field(t, "id")
	vicID, vic := uiUser(map[string]any{"level": "organization", "accounts": []string{w.a1}, "name": "Vic"})
	samID, sam := uiUser(map[string]any{"level": "account", "account": w.a1, "role": "admin", "name": "Sam"})
	boID, _ := uiUser(map[string]any{"level": "account", "account": w.a1, "name": "Bo"})
	cyID, _ := uiUser(map[string]any{"level": "account", "account": w.a2, "name": "Cy"})

	// tokenCount is how many tokens a user has, as the operator sees it.
	tokenCount := func(user string) int {
		var list struct{ Tokens []struct{ ID string } }
		e.must(e.call("", "GET", o+"/users/"+user+"/tokens", nil), 200).json(t, &list)
		return len(list.Tokens)
	}
	type event struct {
		Action, Target string
		Actor          struct{ ID, Type string }
	}
	tokenCreates := func() []event {
		var ev struct{ Events []event }
		e.must(e.call("", "GET", o+"/audit?limit=1000", nil), 200).json(t, &ev)
		var out []event
		for _, x := range ev.Events {
			if x.Action == "token.create" {
				out = append(out, x)
			}
		}
		return out
	}

	const (
		mount   = "tokengate_admin"
		console = "console/api"
		op      = "operator"
	)
	tests := []struct {
		name               string
		via                string
		tok                string
		actorID, actorType string
		user               string
		want               int
		code               string
	}{
		{"programmatic org admin, for a UI admin", mount, w.orgAdmin, w.orgAdminID, "programmatic", anaID, 403, "forbidden"},
		{"programmatic org admin, for a UI viewer", mount, w.orgAdmin, w.orgAdminID, "programmatic", vicID, 403, "forbidden"},
		{"programmatic account admin, for a UI user of its account", mount, w.acctAdminA1, w.acctAdminA1ID, "programmatic", boID, 403, "forbidden"},
		{"programmatic org admin, for a programmatic user", mount, w.orgAdmin, w.orgAdminID, "programmatic", w.userA1, 201, ""},
		{"programmatic viewer, for itself", mount, w.orgViewerTok, w.orgViewer, "programmatic", w.orgViewer, 403, "forbidden"},
		{"programmatic org admin, through the console", console, w.orgAdmin, w.orgAdminID, "programmatic", anaID, 403, "programmatic_ui_forbidden"},
		{"UI org admin, for a UI viewer", mount, w.orgAdminUI, anaID, "ui", vicID, 201, ""},
		{"UI org admin, for itself", mount, w.orgAdminUI, anaID, "ui", anaID, 201, ""},
		{"UI org admin, through the console", console, w.orgAdminUI, anaID, "ui", boID, 201, ""},
		{"UI viewer, for itself", mount, vic, vicID, "ui", vicID, 201, ""},
		{"UI viewer, for itself, through the console", console, vic, vicID, "ui", vicID, 201, ""},
		{"UI viewer, for another UI user", mount, vic, vicID, "ui", boID, 403, "forbidden"},
		{"UI viewer, for a UI admin", console, vic, vicID, "ui", anaID, 403, "forbidden"},
		{"UI viewer, for a programmatic user", mount, vic, vicID, "ui", w.userA1, 403, "forbidden"},
		{"UI account admin, for a UI user of its account", mount, sam, samID, "ui", boID, 201, ""},
		{"UI account admin, for itself", mount, sam, samID, "ui", samID, 201, ""},
		{"UI account admin, for a UI user of another account", mount, sam, samID, "ui", cyID, 403, "forbidden"},
		{"UI account admin, for an org-level UI user", mount, sam, samID, "ui", vicID, 403, "forbidden"},
		{"operator, for a UI user", op, "", "operator", "operator", cyID, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := o + "/users/" + tt.user + "/tokens"
			countBefore, eventsBefore := tokenCount(tt.user), len(tokenCreates())
			var r resp
			switch tt.via {
			case op:
				r = e.call("", "POST", path, map[string]any{"name": "new"})
			case mount:
				r = e.call(tt.tok, "POST", path, map[string]any{"name": "new"})
			case console:
				r = e.send(tt.tok, "POST", e.siteURL+"/admin/console/api"+path, map[string]any{"name": "new"}, "application/json")
			}
			if r.status != tt.want || r.code != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.want, tt.code)
			}
			created := tokenCreates()
			if r.status != 201 {
				if n := tokenCount(tt.user); n != countBefore {
					t.Fatalf("a refused request left %d tokens, had %d", n, countBefore)
				}
				if len(created) != eventsBefore {
					t.Fatal("a refused request wrote a token.create event")
				}
				return
			}
			if len(created) != eventsBefore+1 {
				t.Fatalf("%d token.create events written, want 1", len(created)-eventsBefore)
			}
			if ev := created[0]; ev.Target != r.field(t, "id") || ev.Actor.ID != tt.actorID || ev.Actor.Type != tt.actorType {
				t.Fatalf("audit event %+v", ev)
			}
			secret := r.field(t, "secret")
			route, answer := "/ui/home", "ui "+tt.user
			if tt.user == w.userA1 {
				route, answer = "/api/x", "ok "+tt.user
				if !strings.HasPrefix(secret, "tgp_") {
					t.Fatalf("programmatic user's token %q", secret[:4])
				}
			} else if !strings.HasPrefix(secret, "tgu_") {
				t.Fatalf("UI user's token %q", secret[:4])
			}
			if g := e.gateway(secret, route); g.status != 200 || string(g.body) != answer {
				t.Fatalf("the new token on %s: %d %s", route, g.status, g.body)
			}
		})
	}

	t.Run("a UI viewer lists and revokes its own tokens", func(t *testing.T) {
		extra := e.must(e.call(vic, "POST", o+"/users/"+vicID+"/tokens", map[string]any{"name": "spare"}), 201)
		var list struct{ Tokens []struct{ ID string } }
		e.must(e.call(vic, "GET", o+"/users/"+vicID+"/tokens", nil), 200).json(t, &list)
		found := false
		for _, tk := range list.Tokens {
			found = found || tk.ID == extra.field(t, "id")
		}
		if !found {
			t.Fatalf("own listing lacks the new token: %+v", list)
		}
		e.must(e.send(vic, "GET", e.siteURL+"/admin/console/api"+o+"/users/"+vicID+"/tokens", nil, ""), 200)
		e.must(e.call(vic, "DELETE", o+"/users/"+vicID+"/tokens/"+extra.field(t, "id"), nil), 204)
		if g := e.gateway(extra.field(t, "secret"), "/ui/home"); g.status != 401 {
			t.Fatalf("revoked token: %d %s", g.status, g.body)
		}
		var ev struct{ Events []event }
		e.must(e.call("", "GET", o+"/audit?limit=1", nil), 200).json(t, &ev)
		if x := ev.Events[0]; x.Action != "token.revoke" || x.Actor.ID != vicID || x.Actor.Type != "ui" {
			t.Fatalf("audit event %+v", x)
		}
	})

	t.Run("nothing else opens up for a UI viewer", func(t *testing.T) {
		var anas struct{ Tokens []struct{ ID string } }
		e.must(e.call("", "GET", o+"/users/"+anaID+"/tokens", nil), 200).json(t, &anas)
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"GET", o, nil},
			{"GET", o + "/users", nil},
			{"GET", o + "/users/" + vicID, nil},
			{"PATCH", o + "/users/" + vicID, map[string]any{"role": "admin"}},
			{"DELETE", o + "/users/" + vicID, nil},
			{"POST", o + "/users", map[string]any{"type": "ui", "level": "organization", "role": "admin", "name": "x", "email": "x@example.com"}},
			{"GET", o + "/users/" + anaID + "/tokens", nil},
			{"DELETE", o + "/users/" + anaID + "/tokens/" + anas.Tokens[0].ID, nil},
			{"GET", o + "/audit", nil},
			{"GET", "/nope", nil},
		} {
			if r := e.call(vic, tc.method, tc.path, tc.body); r.status != 403 || r.code != "forbidden" {
				t.Fatalf("%s %s: got %d %s", tc.method, tc.path, r.status, r.body)
			}
		}
		if r := e.send(vic, "GET", e.siteURL+"/admin/console/api/whoami", nil, ""); r.status != 403 {
			t.Fatalf("whoami: %d %s", r.status, r.body)
		}
		// A programmatic viewer gets nothing of its own either.
		if r := e.call(w.orgViewerTok, "GET", o+"/users/"+w.orgViewer+"/tokens", nil); r.status != 403 {
			t.Fatalf("programmatic viewer's own tokens: %d %s", r.status, r.body)
		}
		if n := len(anas.Tokens); n != tokenCount(anaID) {
			t.Fatal("the UI admin's tokens changed")
		}
	})
}
