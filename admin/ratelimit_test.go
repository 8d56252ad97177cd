package admin_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// rateLimitOf reads rate_limit from a user, or from the user of a creation
// answer; nil when the answer has none.
func rateLimitOf(t *testing.T, r resp) map[string]any {
	t.Helper()
	var u struct {
		RateLimit map[string]any `json:"rate_limit"`
		User      *struct {
			RateLimit map[string]any `json:"rate_limit"`
		} `json:"user"`
	}
	r.json(t, &u)
	if u.User != nil {
		return u.User.RateLimit
	}
	return u.RateLimit
}

// checkRateLimit fails unless r's user has exactly requests per window.
func checkRateLimit(t *testing.T, what string, r resp, requests float64, window string) {
	t.Helper()
	got := rateLimitOf(t, r)
	if len(got) != 2 || got["requests"] != requests || got["window"] != window {
		t.Fatalf("%s: rate_limit %v, want {requests: %v, window: %q} (%s)", what, got, requests, window, r.body)
	}
}

// TestRateLimit: rate_limit on create and PATCH, shown in canonical form
// on every reading of the user, left alone by other changes, removed by
// null, and audited.
func TestRateLimit(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org

	created := e.must(e.call(w.orgAdmin, "POST", o+"/users", map[string]any{"type": "programmatic", "level": "account", "account": w.a1,
		"role": "viewer", "name": "metered", "rate_limit": map[string]any{"requests": 120, "window": "120s"}}), 201)
	checkRateLimit(t, "created", created, 120, "2m")
	id := created.field(t, "user", "id")
	checkRateLimit(t, "read", e.must(e.call("", "GET", o+"/users/"+id, nil), 200), 120, "2m")
	var listed struct {
		Users []struct {
			ID        string
			RateLimit map[string]any `json:"rate_limit"`
		}
	}
	e.must(e.call(w.orgAdmin, "GET", o+"/users?account="+w.a1, nil), 200).json(t, &listed)
	found := false
	for _, u := range listed.Users {
		if u.ID == id {
			found = true
			if u.RateLimit["requests"] != 120.0 || u.RateLimit["window"] != "2m" {
				t.Fatalf("listed with rate_limit %v", u.RateLimit)
			}
		} else if u.RateLimit != nil {
			t.Fatalf("user %s, created without one, is listed with rate_limit %v", u.ID, u.RateLimit)
		}
	}
	if !found {
		t.Fatal("the user is not listed")
	}

	t.Run("absent or null at creation: none, and no field", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"type": "programmatic", "level": "account", "account": w.a1, "role": "viewer", "name": "unmetered"},
			{"type": "programmatic", "level": "account", "account": w.a1, "role": "viewer", "name": "unmetered", "rate_limit": nil},
		} {
			r := e.must(e.call("", "POST", o+"/users", body), 201)
			if strings.Contains(string(r.body), "rate_limit") {
				t.Fatalf("a user without a limit is shown with one: %s", r.body)
			}
		}
	})

	t.Run("PATCH changes, keeps and removes it", func(t *testing.T) {
		patched := e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+id, map[string]any{"rate_limit": map[string]any{"requests": 5, "window": "1h0m0s"}}), 200)
		checkRateLimit(t, "patched", patched, 5, "1h")
		for _, win := range []struct{ given, stored string }{{"1s", "1s"}, {"90s", "90s"}, {"1440m", "24h"}, {"1.5m", "90s"}, {"2000ms", "2s"}} {
			r := e.must(e.call("", "PATCH", o+"/users/"+id, map[string]any{"rate_limit": map[string]any{"requests": 7, "window": win.given}}), 200)
			checkRateLimit(t, "window "+win.given, r, 7, win.stored)
		}
		described := e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+id, map[string]any{"description": "metered by the hour"}), 200)
		checkRateLimit(t, "after a PATCH of the description", described, 7, "2s")
		cleared := e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+id, map[string]any{"rate_limit": nil}), 200)
		if strings.Contains(string(cleared.body), "rate_limit") {
			t.Fatalf("cleared, yet shown: %s", cleared.body)
		}
		if r := e.must(e.call("", "GET", o+"/users/"+id, nil), 200); strings.Contains(string(r.body), "rate_limit") {
			t.Fatalf("cleared, yet read back: %s", r.body)
		}
		// Removing what is not there is no error.
		e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+id, map[string]any{"rate_limit": nil}), 200)
	})

	t.Run("every change is audited", func(t *testing.T) {
		var audit struct {
			Events []struct {
				Action, Target string
				Actor          struct{ ID, Type string }
			}
		}
		e.must(e.call("", "GET", o+"/audit?limit=20", nil), 200).json(t, &audit)
		creates, updates := 0, 0
		for _, ev := range audit.Events {
			switch {
			case ev.Target != id:
			case ev.Action == "user.create":
				creates++
				if ev.Actor.ID != w.orgAdminID || ev.Actor.Type != "programmatic" {
					t.Errorf("user.create by %+v, want the org admin", ev.Actor)
				}
			case ev.Action == "user.update":
				updates++
			}
		}
		// One PATCH to 5/1h, five windows, the description, two removals.
		if creates != 1 || updates != 9 {
			t.Fatalf("%d user.create and %d user.update events for the user, want 1 and 9: %+v", creates, updates, audit.Events)
		}
	})
}

// TestRateLimitValidation: a bad rate_limit, on create and PATCH, is 400
// invalid_request naming rate_limit (or its field) and saying what is
// wrong; nothing is written.
func TestRateLimitValidation(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	e.must(e.call("", "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": map[string]any{"requests": 10, "window": "1m"}}), 200)
	tests := []struct {
		name  string
		value any
		field string // the start of the message
		says  string
	}{
		{"no requests", map[string]any{"requests": 0, "window": "1m"}, "rate_limit.requests ", "must be from 1 to 1000000000"},
		{"negative requests", map[string]any{"requests": -1, "window": "1m"}, "rate_limit.requests ", "must be from 1"},
		{"too many requests", map[string]any{"requests": 1000000001, "window": "1m"}, "rate_limit.requests ", "must be from 1"},
		{"requests missing", map[string]any{"window": "1m"}, "rate_limit.requests ", "must be from 1"},
		{"under a second", map[string]any{"requests": 1, "window": "500ms"}, "rate_limit.window ", "from 1s to 24h"},
		{"part of a second", map[string]any{"requests": 1, "window": "1500ms"}, "rate_limit.window ", "whole number of seconds"},
		{"over a day", map[string]any{"requests": 1, "window": "25h"}, "rate_limit.window ", "from 1s to 24h"},
		{"days are not a unit", map[string]any{"requests": 1, "window": "1d"}, "rate_limit.window ", `such as "1s", "1m" or "24h"`},
		{"no window", map[string]any{"requests": 1}, "rate_limit.window ", "must be a duration"},
		{"negative window", map[string]any{"requests": 1, "window": "-1m"}, "rate_limit.window ", "from 1s to 24h"},
		{"requests as a string", map[string]any{"requests": "100", "window": "1m"}, "rate_limit.requests ", "must be a whole number"},
		{"requests not whole", map[string]any{"requests": 1.5, "window": "1m"}, "rate_limit.requests ", "must be a whole number"},
		{"window as seconds", map[string]any{"requests": 1, "window": 60}, "rate_limit.window ", "must be a string"},
		{"an unknown field", map[string]any{"requests": 1, "window": "1m", "burst": 10}, "rate_limit.burst ", "is not a field of rate_limit"},
		// The nested object is read as strictly as the body: exact names,
		// each once, no null.
		{"names in capitals", json.RawMessage(`{"REQUESTS":5,"Window":"1m"}`), "rate_limit.REQUESTS ", "is not a field of rate_limit"},
		{"a name in another case", json.RawMessage(`{"requests":5,"Window":"1m"}`), "rate_limit.Window ", "is not a field of rate_limit"},
		{"requests twice", json.RawMessage(`{"requests":7,"requests":3,"window":"1m"}`), "rate_limit.requests ", "is given more than once"},
		{"window then null", json.RawMessage(`{"requests":7,"window":"1m","window":null}`), "rate_limit.window ", "is given more than once"},
		{"null window", json.RawMessage(`{"requests":7,"window":null}`), "rate_limit.window ", "must not be null"},
		{"null requests", json.RawMessage(`{"requests":null,"window":"1m"}`), "rate_limit.requests ", "must not be null"},
		{"a string", "100/1m", "rate_limit ", "must be null or an object"},
		{"a number", 100, "rate_limit ", "must be null or an object"},
		{"a list", []any{100, "1m"}, "rate_limit ", "must be null or an object"},
	}
	for _, tt := range tests {
		for _, call := range []struct {
			method, path string
			body         map[string]any
		}{
			{"POST", o + "/users", map[string]any{"type": "programmatic", "level": "account", "account": w.a1, "role": "viewer",
				"name": "bad-limit", "rate_limit": tt.value}},
			{"PATCH", o + "/users/" + w.userA1, map[string]any{"name": "bad-limit", "rate_limit": tt.value}},
		} {
			t.Run(call.method+" "+tt.name, func(t *testing.T) {
				r := e.call(w.orgAdmin, call.method, call.path, call.body)
				var body struct{ Error struct{ Message string } }
				r.json(t, &body)
				if r.status != 400 || r.code != "invalid_request" || !strings.HasPrefix(body.Error.Message, tt.field) ||
					!strings.Contains(body.Error.Message, tt.says) {
					t.Fatalf("got %d %s, want 400 invalid_request on %q saying %q", r.status, r.body, tt.field, tt.says)
				}
			})
		}
	}
	// Nothing was written: no user created, the patched one unchanged.
	var users struct{ Users []struct{ Name string } }
	e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &users)
	for _, u := range users.Users {
		if u.Name == "bad-limit" {
			t.Fatal("a refused request created or renamed a user")
		}
	}
	checkRateLimit(t, "after refused PATCHes", e.must(e.call("", "GET", o+"/users/"+w.userA1, nil), 200), 10, "1m")
}

// TestRateLimitOwn: an admin can lower its own rate_limit, never raise or
// remove it (a stolen admin token must not buy itself more requests);
// another admin, or the operator, can. Lower is fewer or as many requests
// per window, and no more requests over time.
func TestRateLimitOwn(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	// Generous limits: the admin's own calls stay far within them.
	selfID, self := e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin", "accounts": []string{w.a1},
		"rate_limit": map[string]any{"requests": 1000, "window": "1m"}})
	patchOwn := func(limit any) resp {
		t.Helper()
		return e.call(self, "PATCH", o+"/users/"+selfID, map[string]any{"rate_limit": limit})
	}
	limit := func(requests int, window string) map[string]any {
		return map[string]any{"requests": requests, "window": window}
	}
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 403 || r.code != "forbidden" || !strings.Contains(string(r.body), "only lower its own rate_limit") {
			t.Fatalf("%s: %d %s, want 403 forbidden", what, r.status, r.body)
		}
	}

	steps := []struct {
		name     string
		requests int // 0: remove the limit
		window   string
		allowed  bool
		stored   string // the window stored after an allowed step
	}{
		{"more requests, same window", 1001, "1m", false, ""},
		{"same requests, shorter window", 1000, "59s", false, ""},
		{"same rate, bigger burst", 10000, "10m", false, ""},
		{"removed", 0, "", false, ""},
		{"the same, written otherwise", 1000, "60s", true, "1m"},
		{"same requests, longer window", 1000, "2m", true, "2m"},
		{"fewer requests, same window", 900, "2m", true, "2m"},
		{"fewer requests, yet a higher rate", 600, "1m", false, ""},
		{"fewer requests, the same rate", 450, "1m", true, "1m"},
		{"back up", 900, "2m", false, ""},
	}
	for _, s := range steps {
		var r resp
		if s.requests == 0 {
			r = patchOwn(nil)
		} else {
			r = patchOwn(limit(s.requests, s.window))
		}
		if !s.allowed {
			refused(s.name, r)
			continue
		}
		if r.status != 200 {
			t.Fatalf("%s: %d %s, want 200", s.name, r.status, r.body)
		}
		checkRateLimit(t, s.name, r, float64(s.requests), s.stored)
	}
	// A bad value is refused as such, before the rule is judged.
	for _, bad := range []struct {
		requests int
		window   string
		field    string
	}{{0, "1m", "rate_limit.requests"}, {1, "500ms", "rate_limit.window"}, {1, "1d", "rate_limit.window"}} {
		if r := patchOwn(limit(bad.requests, bad.window)); r.status != 400 || r.code != "invalid_request" || !strings.Contains(string(r.body), bad.field) {
			t.Fatalf("its own rate_limit set to %d/%s: %d %s, want 400 on %s", bad.requests, bad.window, r.status, r.body, bad.field)
		}
	}
	checkRateLimit(t, "after the refusals", e.must(e.call("", "GET", o+"/users/"+selfID, nil), 200), 450, "1m")
	// Other changes of its own leave the limit and pass.
	e.must(e.call(self, "PATCH", o+"/users/"+selfID, map[string]any{"description": "limited"}), 200)

	// Another admin raises it; the operator removes it.
	checkRateLimit(t, "raised by another admin",
		e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+selfID, map[string]any{"rate_limit": limit(5000, "1m")}), 200), 5000, "1m")
	if r := e.must(e.call("", "PATCH", o+"/users/"+selfID, map[string]any{"rate_limit": nil}), 200); rateLimitOf(t, r) != nil {
		t.Fatalf("removed by the operator, yet %s", r.body)
	}
	// Without a limit, any limit is lower: it may set one on itself, and
	// removing none is no raise.
	e.must(patchOwn(nil), 200)
	checkRateLimit(t, "set on itself", e.must(patchOwn(limit(2000, "1m")), 200), 2000, "1m")
	refused("removed by itself", patchOwn(nil))

	// An account-level admin is bound the same way.
	acctID, acct := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin",
		"rate_limit": limit(100, "1s")})
	refused("an account admin raising its own", e.call(acct, "PATCH", o+"/users/"+acctID, map[string]any{"rate_limit": limit(101, "1s")}))
	e.must(e.call(acct, "PATCH", o+"/users/"+acctID, map[string]any{"rate_limit": limit(100, "2s")}), 200)
	// …while it raises the users it manages, up to its own limit (see
	// TestRateLimitInherited).
	checkRateLimit(t, "raised by its account admin",
		e.must(e.call(acct, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": limit(100, "2s")}), 200), 100, "2s")
}

// TestRateLimitInherited: an admin with a rate_limit gives no user more
// than its own, so it cannot lift its own limit through another admin (the
// escalation a black-box attack found: an account admin limited to 10 per
// minute created an admin without a limit, whose token then removed the
// first one's). Leaving a user's rate_limit as it is stays open, and the
// operator and admins without a limit are not bound.
func TestRateLimitInherited(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	limit := func(requests int, window string) map[string]any {
		return map[string]any{"requests": requests, "window": window}
	}
	limitedID, limited := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin",
		"rate_limit": limit(10, "1m")})
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 403 || r.code != "forbidden" ||
			!strings.Contains(string(r.body), "an admin limited to 10 per 1m cannot grant more: rate_limit ") {
			t.Fatalf("%s: %d %s, want 403 forbidden naming rate_limit", what, r.status, r.body)
		}
	}
	heir := func(rateLimit any) map[string]any {
		body := map[string]any{"type": "programmatic", "level": "account", "account": w.a1, "role": "admin", "name": "heir"}
		if rateLimit != "absent" {
			body["rate_limit"] = rateLimit
		}
		return body
	}

	t.Run("the escalation of the report is refused", func(t *testing.T) {
		r := e.call(limited, "POST", o+"/users", heir("absent"))
		if r.status == 201 { // the report's second request
			e.call(r.field(t, "token", "secret"), "PATCH", o+"/users/"+limitedID, map[string]any{"rate_limit": nil})
		}
		checkRateLimit(t, "the limited admin", e.must(e.call("", "GET", o+"/users/"+limitedID, nil), 200), 10, "1m")
		refused("an admin without a limit", r)
	})

	t.Run("create", func(t *testing.T) {
		for _, tt := range []struct {
			name      string
			rateLimit any
			stored    string // the window stored when allowed; "" when refused
		}{
			{"absent", "absent", ""},
			{"null", nil, ""},
			{"more requests", limit(11, "1m"), ""},
			{"a higher rate", limit(1, "1s"), ""},
			{"the same rate, a bigger burst", limit(100, "10m"), ""},
			{"the same", limit(10, "60s"), "1m"},
			{"fewer requests", limit(5, "1m"), "1m"},
			{"a longer window", limit(10, "1h"), "1h"},
			{"a lower rate, fewer requests", limit(1, "7s"), "7s"},
		} {
			r := e.call(limited, "POST", o+"/users", heir(tt.rateLimit))
			if tt.stored == "" {
				refused(tt.name, r)
				continue
			}
			m, _ := tt.rateLimit.(map[string]any)
			checkRateLimit(t, tt.name, e.must(r, 201), float64(m["requests"].(int)), tt.stored)
		}
		// Nothing beyond the limit was created.
		var users struct {
			Users []struct {
				Name      string
				RateLimit *struct{ Requests int } `json:"rate_limit"`
			}
		}
		e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &users)
		for _, u := range users.Users {
			if u.Name == "heir" && (u.RateLimit == nil || u.RateLimit.Requests > 10) {
				t.Fatalf("a refused creation left a user: %+v", u)
			}
		}
	})

	t.Run("PATCH", func(t *testing.T) {
		// w.userA1 has no limit: beyond the admin's.
		renamed := e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"name": "renamed", "disabled": false}), 200)
		if rateLimitOf(t, renamed) != nil || renamed.field(t, "name") != "renamed" {
			t.Fatalf("renamed: %s", renamed.body)
		}
		e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"allowed_cidrs": []string{"127.0.0.0/8"}}), 200)
		// Removing none is no change.
		e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": nil}), 200)
		checkRateLimit(t, "set within", e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": limit(5, "1m")}), 200), 5, "1m")
		refused("removed", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": nil}))
		refused("raised", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": limit(20, "1m")}))
		refused("raised, renamed", e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"name": "x", "rate_limit": limit(10, "59s")}))
		checkRateLimit(t, "up to its own", e.must(e.call(limited, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": limit(10, "1m")}), 200), 10, "1m")

		// A user the operator gave more: left as it is, or lowered to
		// within the admin's.
		elderID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer", "rate_limit": limit(100, "1m")})
		e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"description": "older"}), 200)
		checkRateLimit(t, "left as it is", e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"rate_limit": limit(100, "60s")}), 200), 100, "1m")
		refused("lowered, yet above", e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"rate_limit": limit(50, "1m")}))
		checkRateLimit(t, "lowered within", e.must(e.call(limited, "PATCH", o+"/users/"+elderID, map[string]any{"rate_limit": limit(10, "1m")}), 200), 10, "1m")
		checkRateLimit(t, "after the refusals", e.must(e.call("", "GET", o+"/users/"+w.userA1, nil), 200), 10, "1m")
		if r := e.must(e.call("", "GET", o+"/users/"+w.userA1, nil), 200); r.field(t, "name") != "renamed" {
			t.Fatalf("a refused PATCH renamed the user: %s", r.body)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		// An older admin without a limit: a token of it would lift the
		// limit just as well.
		elderID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin"})
		r := e.call(limited, "POST", o+"/users/"+elderID+"/tokens", map[string]any{"name": "mine now"})
		if r.status == 201 {
			e.call(r.field(t, "secret"), "PATCH", o+"/users/"+limitedID, map[string]any{"rate_limit": nil})
		}
		checkRateLimit(t, "the limited admin", e.must(e.call("", "GET", o+"/users/"+limitedID, nil), 200), 10, "1m")
		if r.status != 403 || r.code != "forbidden" ||
			!strings.Contains(string(r.body), "an admin limited to 10 per 1m cannot take a token of a user with more: its rate_limit none") {
			t.Fatalf("a token of an admin without a limit: %d %s", r.status, r.body)
		}
		// Its tokens can still be listed and revoked.
		e.must(e.call(limited, "GET", o+"/users/"+elderID+"/tokens", nil), 200)
		// Tokens of users within its limit, and its own.
		e.must(e.call(limited, "POST", o+"/users/"+w.userA1+"/tokens", map[string]any{"name": "within"}), 201)
		e.must(e.call(limited, "POST", o+"/users/"+limitedID+"/tokens", map[string]any{"name": "own"}), 201)
	})

	t.Run("the operator and admins without a limit are not bound", func(t *testing.T) {
		e.must(e.call("", "POST", o+"/users", heir("absent")), 201)
		e.must(e.call(w.acctAdminA1, "POST", o+"/users", heir(nil)), 201)
		e.must(e.call(w.acctAdminA1, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": limit(1000000, "1s")}), 200)
		e.must(e.call(w.acctAdminA1, "PATCH", o+"/users/"+w.userA1, map[string]any{"rate_limit": nil}), 200)
		if r := e.must(e.call("", "PATCH", o+"/users/"+limitedID, map[string]any{"rate_limit": nil}), 200); rateLimitOf(t, r) != nil {
			t.Fatalf("removed by the operator, yet %s", r.body)
		}
		// Without its limit, the admin is bound no more.
		e.must(e.call(limited, "POST", o+"/users", heir("absent")), 201)
	})
}
