package admin_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestAllowedCIDRs: allowed_cidrs on create and PATCH, shown in canonical
// form, audited, and enforced on tokengate_admin (and its console API) and
// on the gateway, from the next request on. The site is reached from
// 127.0.0.1 and trusts no proxy.
func TestAllowedCIDRs(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	networks := func(r resp) []string {
		t.Helper()
		var u struct {
			AllowedCIDRs []string `json:"allowed_cidrs"`
			User         *struct {
				AllowedCIDRs []string `json:"allowed_cidrs"`
			} `json:"user"`
		}
		r.json(t, &u)
		if u.User != nil {
			return u.User.AllowedCIDRs
		}
		return u.AllowedCIDRs
	}

	// An organization admin limited to 10.0.0.0/8, created by the operator.
	created := e.must(e.call("", "POST", o+"/users", map[string]any{"type": "programmatic", "level": "organization",
		"accounts": []string{w.a1}, "role": "admin", "name": "vpn-admin", "allowed_cidrs": []string{"10.0.0.0/8", "2001:0DB8::/32"}}), 201)
	if got := networks(created); !slices.Equal(got, []string{"10.0.0.0/8", "2001:db8::/32"}) {
		t.Fatalf("created with allowed_cidrs %q", got)
	}
	limitedID, limited := created.field(t, "user", "id"), created.field(t, "token", "secret")

	t.Run("tokengate_admin refuses the admin outside its networks", func(t *testing.T) {
		for _, path := range []string{o, o + "/users"} {
			r := e.call(limited, "GET", path, nil)
			if r.status != 403 || r.code != "ip_forbidden" {
				t.Fatalf("GET %s from 127.0.0.1: %d %s", path, r.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="tokengate", error="insufficient_scope"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		}
		e.must(e.call(w.orgAdmin, "GET", o, nil), 200)
		if r := e.gateway(limited, "/api/x?accountId="+w.a1); r.status != 403 || r.code != "ip_forbidden" {
			t.Fatalf("gateway: %d %s", r.status, r.body)
		}
		// The console's API says where first, as the gateway does, before
		// it says programmatic users have no UI.
		if r := e.send(limited, "GET", e.siteURL+"/admin/console/api"+o, nil, ""); r.status != 403 || r.code != "ip_forbidden" {
			t.Fatalf("console API: %d %s", r.status, r.body)
		}
	})

	t.Run("a UI admin outside its networks is refused by the console's API", func(t *testing.T) {
		ui := e.must(e.call("", "POST", o+"/users", map[string]any{"type": "ui", "level": "organization", "role": "admin",
			"name": "Remote", "email": "remote@example.com", "allowed_cidrs": []string{"192.0.2.0/24"}}), 201).field(t, "user", "id")
		pat := e.must(e.call("", "POST", o+"/users/"+ui+"/tokens", map[string]any{"name": "laptop"}), 201).field(t, "secret")
		for _, url := range []string{e.siteURL + "/admin/console/api/whoami", e.siteURL + "/admin" + o} {
			if r := e.send(pat, "GET", url, nil, ""); r.status != 403 || r.code != "ip_forbidden" {
				t.Fatalf("GET %s: %d %s", url, r.status, r.body)
			}
		}
		if r := e.gateway(pat, "/ui/home"); r.status != 403 || r.code != "ip_forbidden" {
			t.Fatalf("ui route: %d %s", r.status, r.body)
		}
	})

	t.Run("PATCH applies at once", func(t *testing.T) {
		// Another admin lets it in from loopback: its next call works.
		patched := e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128"}}), 200)
		if got := networks(patched); !slices.Equal(got, []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128"}) {
			t.Fatalf("patched to %q", got)
		}
		e.must(e.call(limited, "GET", o, nil), 200)
		if r := e.gateway(limited, "/api/x?accountId="+w.a1); r.status != 200 {
			t.Fatalf("gateway after PATCH: %d %s", r.status, r.body)
		}
		// It narrows its own list to elsewhere: refused from the next call.
		e.must(e.call(limited, "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8"}}), 200)
		if r := e.call(limited, "GET", o, nil); r.code != "ip_forbidden" {
			t.Fatalf("after narrowing: %d %s", r.status, r.body)
		}
		// Cleared: anywhere again; the view drops the field.
		cleared := e.must(e.call("", "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{}}), 200)
		if got := networks(cleared); got != nil {
			t.Fatalf("cleared to %q", got)
		}
		e.must(e.call(limited, "GET", o, nil), 200)
		// Other fields leave the list alone.
		e.must(e.call("", "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8"}}), 200)
		described := e.must(e.call("", "PATCH", o+"/users/"+limitedID, map[string]any{"description": "only over the VPN"}), 200)
		if got := networks(described); !slices.Equal(got, []string{"10.0.0.0/8"}) {
			t.Fatalf("a PATCH of the description left %q", got)
		}
	})

	t.Run("an admin cannot lift its own limit", func(t *testing.T) {
		// An org admin limited to loopback (where the test runs) would,
		// with a stolen token, clear its own list and go anywhere.
		adminU, adminTok := e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin",
			"accounts": []string{w.a1}, "allowed_cidrs": []string{"127.0.0.0/8", "::1/128"}})
		for _, widened := range [][]string{{}, {"0.0.0.0/0", "::/0"}, {"127.0.0.0/8", "10.0.0.0/8"}} {
			r := e.call(adminTok, "PATCH", o+"/users/"+adminU, map[string]any{"allowed_cidrs": widened})
			if r.status != 403 || !strings.Contains(string(r.body), `"forbidden"`) {
				t.Fatalf("own allowed_cidrs widened to %q: %d %s", widened, r.status, r.body)
			}
		}
		// Narrowing its own list is fine.
		e.must(e.call(adminTok, "PATCH", o+"/users/"+adminU, map[string]any{"allowed_cidrs": []string{"127.0.0.1/32", "::1/128"}}), 200)
		e.must(e.call(adminTok, "PATCH", o+"/users/"+adminU, map[string]any{"description": "still fine"}), 200)
		e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+adminU, map[string]any{"allowed_cidrs": []string{}}), 200)
	})

	t.Run("every change is audited", func(t *testing.T) {
		var audit struct {
			Events []struct{ Action, Target string }
		}
		e.must(e.call("", "GET", o+"/audit?limit=10", nil), 200).json(t, &audit)
		updates := 0
		for _, ev := range audit.Events {
			if ev.Action == "user.update" && ev.Target == limitedID {
				updates++
			}
		}
		if updates != 5 {
			t.Fatalf("%d user.update events for the user, want 5: %+v", updates, audit.Events)
		}
	})
}

// TestAllowedCIDRsValidation: bad networks, on create and PATCH, are 400
// invalid_request naming allowed_cidrs and saying what is wrong; nothing is
// written.
func TestAllowedCIDRsValidation(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
		}
		return out
	}
	tests := []struct {
		name  string
		value any
		says  string
	}{
		{"not a CIDR", []string{"10.0.0.0/33"}, "is not a network such as 10.0.0.0/8"},
		{"bits past the prefix", []string{"10.1.2.3/8"}, "write 10.0.0.0/8 for the network, or 10.1.2.3/32 for one address"},
		{"a bare address", []string{"2001:db8::1"}, "write 2001:db8::1/128"},
		{"IPv4-mapped", []string{"::ffff:10.0.0.0/104"}, "write it as 10.0.0.0/8"},
		{"listed twice", []string{"::1/128", "0::1/128"}, "is listed twice"},
		{"too many", many(101), "at most 100 networks"},
		{"too long", []string{strings.Repeat("1", 65)}, "at most 64 characters"},
		{"not a list", "10.0.0.0/8", "must be a list of strings"},
		{"null", nil, "must not be null"},
	}
	for _, tt := range tests {
		for _, call := range []struct {
			method, path string
			body         map[string]any
		}{
			{"POST", o + "/users", map[string]any{"type": "programmatic", "level": "account", "account": w.a1, "role": "viewer",
				"name": "bad-networks", "allowed_cidrs": tt.value}},
			{"PATCH", o + "/users/" + w.userA1, map[string]any{"allowed_cidrs": tt.value}},
		} {
			t.Run(call.method+" "+tt.name, func(t *testing.T) {
				r := e.call("", call.method, call.path, call.body)
				var body struct{ Error struct{ Message string } }
				r.json(t, &body)
				if r.status != 400 || r.code != "invalid_request" || !strings.HasPrefix(body.Error.Message, "allowed_cidrs ") ||
					!strings.Contains(body.Error.Message, tt.says) {
					t.Fatalf("got %d %s, want 400 invalid_request on allowed_cidrs saying %q", r.status, r.body, tt.says)
				}
			})
		}
	}
	// Nothing was written: no user created, the patched one unchanged.
	var users struct{ Users []struct{ Name string } }
	e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &users)
	for _, u := range users.Users {
		if u.Name == "bad-networks" {
			t.Fatal("a refused request created a user")
		}
	}
	if got := e.must(e.call("", "GET", o+"/users/"+w.userA1, nil), 200); strings.Contains(string(got.body), "allowed_cidrs") {
		t.Fatalf("a refused PATCH changed the user: %s", got.body)
	}
}

// TestAllowedCIDRsInherited: an admin with allowed_cidrs gives no user
// networks beyond its own, so it cannot lift its own limit through another
// admin; an empty list is anywhere, within nothing. Leaving a user's list
// as it is stays open, and the operator and admins without a list are not
// bound. The site is reached from 127.0.0.1.
func TestAllowedCIDRsInherited(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	limitedID, limited := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin",
		"allowed_cidrs": []string{"127.0.0.0/8", "::1/128"}})
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 403 || r.code != "forbidden" ||
			!strings.Contains(string(r.body), "an admin limited to allowed_cidrs 127.0.0.0/8, ::1/128 cannot grant more: allowed_cidrs ") {
			t.Fatalf("%s: %d %s, want 403 forbidden naming allowed_cidrs", what, r.status, r.body)
		}
	}
	heir := func(cidrs []string) map[string]any {
		body := map[string]any{"type": "programmatic", "level": "account", "account": w.a1, "role": "admin", "name": "heir"}
		if cidrs != nil {
			body["allowed_cidrs"] = cidrs
		}
		return body
	}
	networksOf := func(r resp) []string {
		t.Helper()
		var u struct {
			AllowedCIDRs []string `json:"allowed_cidrs"`
			User         *struct {
				AllowedCIDRs []string `json:"allowed_cidrs"`
			} `json:"user"`
		}
		r.json(t, &u)
		if u.User != nil {
			return u.User.AllowedCIDRs
		}
		return u.AllowedCIDRs
	}

	t.Run("the escalation of the report is refused", func(t *testing.T) {
		r := e.call(limited, "POST", o+"/users", heir(nil))
		if r.status == 201 { // the report's second request
			e.call(r.field(t, "token", "secret"), "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{}})
		}
		if got := networksOf(e.must(e.call("", "GET", o+"/users/"+limitedID, nil), 200)); !slices.Equal(got, []string{"127.0.0.0/8", "::1/128"}) {
			t.Errorf("the limited admin's networks are now %q", got)
		}
		refused("an admin allowed anywhere", r)
	})

	t.Run("create", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			cidrs   []string
			allowed bool
		}{
			{"absent", nil, false},
			{"empty", []string{}, false},
			{"elsewhere", []string{"10.0.0.0/8"}, false},
			{"everywhere", []string{"0.0.0.0/0", "::/0"}, false},
			{"one network beyond", []string{"127.0.0.0/8", "10.0.0.0/8"}, false},
			{"a wider network", []string{"126.0.0.0/7"}, false},
			{"the same", []string{"::1/128", "127.0.0.0/8"}, true},
			{"narrower", []string{"127.0.0.1/32"}, true},
			{"one of them", []string{"0:0::1/128"}, true},
		} {
			r := e.call(limited, "POST", o+"/users", heir(tt.cidrs))
			if !tt.allowed {
				refused(tt.name, r)
				continue
			}
			if got := networksOf(e.must(r, 201)); len(got) != len(tt.cidrs) {
				t.Fatalf("%s: created with %q", tt.name, got)
			}
		}
		var users struct {
			Users []struct {
				Name         string
				AllowedCIDRs []string `json:"allowed_cidrs"`
			}
		}
		e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &users)
		for _, u := range users.Users {
			for _, n := range u.AllowedCIDRs {
				if u.Name == "heir" && n != "127.0.0.0/8" && n != "127.0.0.1/32" && n != "::1/128" {
					t.Fatalf("a refused creation left a user: %+v", u)
				}
			}
			if u.Name == "heir" && len(u.AllowedCIDRs) == 0 {
				t.Fatalf("a refused creation left a user allowed anywhere")
			}
		}
	})

	t.Run("PATCH", func(t *testing.T) {
		// w.userA1 has no list: anywhere, beyond the admin's networks.
		e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"name": "renamed", "rate_limit": map[string]any{"requests": 5, "window": "1s"}}), 200)
		e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{}}), 200) // no change
		if got := networksOf(e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{"127.0.0.1/32"}}), 200)); !slices.Equal(got, []string{"127.0.0.1/32"}) {
			t.Fatalf("narrowed to %q", got)
		}
		refused("cleared", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{}}))
		refused("elsewhere", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8"}}))
		refused("widened, renamed", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"name": "x", "allowed_cidrs": []string{"126.0.0.0/7"}}))
		e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{"127.0.0.0/8", "::1/128"}}), 200)

		// A user the operator let in from elsewhere: left as it is, or
		// narrowed to within the admin's.
		elderID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer", "allowed_cidrs": []string{"10.0.0.0/8"}})
		e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"description": "older"}), 200)
		e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8"}}), 200)
		refused("narrowed, yet elsewhere", e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"allowed_cidrs": []string{"10.1.0.0/16"}}))
		e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"allowed_cidrs": []string{"127.0.0.1/32"}}), 200)

		r := e.must(e.call("", "GET", o+"/users/"+w.userA1, nil), 200)
		if got := networksOf(r); !slices.Equal(got, []string{"127.0.0.0/8", "::1/128"}) || r.field(t, "name") != "renamed" {
			t.Fatalf("after the refusals: %s", r.body)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		elderID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin"})
		r := e.call(limited, "POST", o+"/users/"+elderID+"/tokens", map[string]any{"name": "mine now"})
		if r.status == 201 {
			e.call(r.field(t, "secret"), "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{}})
		}
		if got := networksOf(e.must(e.call("", "GET", o+"/users/"+limitedID, nil), 200)); !slices.Equal(got, []string{"127.0.0.0/8", "::1/128"}) {
			t.Errorf("the limited admin's networks are now %q", got)
		}
		if r.status != 403 || r.code != "forbidden" ||
			!strings.Contains(string(r.body), "cannot take a token of a user with more: its allowed_cidrs none (anywhere)") {
			t.Fatalf("a token of an admin allowed anywhere: %d %s", r.status, r.body)
		}
		e.must(e.call(limited, "POST", o+"/users/"+w.userA1+"/tokens", map[string]any{"name": "within"}), 201)
		e.must(e.call(limited, "POST", o+"/users/"+limitedID+"/tokens", map[string]any{"name": "own"}), 201)
	})

	t.Run("the operator and admins without a list are not bound", func(t *testing.T) {
		e.must(e.call("", "POST", o+"/users", heir([]string{"10.0.0.0/8"})), 201)
		e.must(e.call(w.acctAdminA1, "POST", o+"/users", heir(nil)), 201)
		e.must(e.call(w.acctAdminA1, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{}}), 200)
		e.must(e.call("", "PATCH", o+"/users/"+limitedID, map[string]any{"allowed_cidrs": []string{}}), 200)
		e.must(e.call(limited, "POST", o+"/users", heir(nil)), 201)
	})
}
