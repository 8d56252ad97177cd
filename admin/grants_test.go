package admin_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestGrantsAreBoundByTheGrantor: a change of role, accounts or policies is
// a grant, bound by the caller's own limits as a creation is. The
// escalation a black-box attack found: an account admin limited to 10
// requests a minute, which may not create an unlimited user, made an
// existing unlimited viewer an admin; that admin then lifted the first
// one's limit.
func TestGrantsAreBoundByTheGrantor(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	limit := func(requests int) map[string]any { return map[string]any{"requests": requests, "window": "1m"} }
	limitedID, limited := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin", "rate_limit": limit(10)})
	_, orgLimited := e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1}, "role": "admin", "rate_limit": limit(10)})
	_, netLimited := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "admin",
		"allowed_cidrs": []string{"127.0.0.0/8", "::1/128"}})
	accountUser := func(fields map[string]any) string {
		body := map[string]any{"level": "account", "account": w.a1, "role": "viewer"}
		for k, v := range fields {
			body[k] = v
		}
		id, _ := e.programmatic(w.org, body)
		return id
	}
	orgUser := func(fields map[string]any) string {
		body := map[string]any{"level": "organization", "accounts": []string{w.a1}, "role": "viewer"}
		for k, v := range fields {
			body[k] = v
		}
		id, _ := e.programmatic(w.org, body)
		return id
	}
	refused := func(t *testing.T, what string, r resp) {
		t.Helper()
		if r.status != 403 || r.code != "forbidden" || !strings.Contains(string(r.body), "cannot grant more") {
			t.Fatalf("%s: %d %s, want 403 forbidden", what, r.status, r.body)
		}
	}

	t.Run("the escalation of the report is refused", func(t *testing.T) {
		victimID, victim := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
		r := e.call(limited, "PATCH", o+"/users/"+victimID, map[string]any{"role": "admin"})
		if r.status == 200 { // the report's second request
			e.syncCache()
			e.call(victim, "PATCH", o+"/users/"+limitedID, map[string]any{"rate_limit": nil})
		}
		checkRateLimit(t, "the limited admin", e.must(e.call("", "GET", o+"/users/"+limitedID, nil), 200), 10, "1m")
		refused(t, "an unlimited viewer made admin", r)
		if role := e.must(e.call("", "GET", o+"/users/"+victimID, nil), 200).field(t, "role"); role != "viewer" {
			t.Fatalf("a refused PATCH left role %q", role)
		}
	})

	t.Run("every grant to a user beyond the grantor is refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, tok string
			target    func() string
			body      map[string]any
		}{
			{"rate-limited: viewer to editor", limited, func() string { return accountUser(nil) }, map[string]any{"role": "editor"}},
			{"rate-limited: viewer to policy", limited, func() string { return accountUser(nil) }, map[string]any{"role": "policy", "policies": []string{w.polA1}}},
			{"rate-limited: other policies", limited, func() string { return accountUser(map[string]any{"role": "policy", "policies": []string{w.polA1}}) },
				map[string]any{"policies": []string{w.polA1, w.polOrg}}},
			{"rate-limited: admin to viewer", limited, func() string { return accountUser(map[string]any{"role": "admin"}) }, map[string]any{"role": "viewer"}},
			{"networks-limited: a user limited in rate only", netLimited, func() string { return accountUser(map[string]any{"rate_limit": limit(1)}) },
				map[string]any{"role": "admin"}},
			{"networks-limited: viewer to admin", netLimited, func() string { return accountUser(nil) }, map[string]any{"role": "admin"}},
			{"organization admin: more accounts", orgLimited, func() string { return orgUser(nil) }, map[string]any{"accounts": []string{w.a1, w.a2}}},
			{"organization admin: viewer to admin", orgLimited, func() string { return orgUser(nil) }, map[string]any{"role": "admin"}},
			{"organization admin: above its rate", orgLimited, func() string { return orgUser(map[string]any{"rate_limit": limit(11)}) },
				map[string]any{"role": "editor"}},
			{"rate-limited: enabling a disabled unlimited user", limited, func() string {
				id := accountUser(nil)
				e.must(e.call("", "PATCH", o+"/users/"+id, map[string]any{"disabled": true}), 200)
				return id
			}, map[string]any{"disabled": false}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				id := tt.target()
				before := e.must(e.call("", "GET", o+"/users/"+id, nil), 200)
				refused(t, tt.name, e.call(tt.tok, "PATCH", o+"/users/"+id, tt.body))
				if after := e.must(e.call("", "GET", o+"/users/"+id, nil), 200); string(after.body) != string(before.body) {
					t.Fatalf("a refused PATCH changed the user:\n%s\n%s", before.body, after.body)
				}
			})
		}
	})

	t.Run("users within the grantor's limits may be granted more", func(t *testing.T) {
		for _, tt := range []struct {
			name, tok string
			target    func() string
			body      map[string]any
		}{
			{"rate-limited: viewer to admin", limited, func() string { return accountUser(map[string]any{"rate_limit": limit(5)}) }, map[string]any{"role": "admin"}},
			{"rate-limited: viewer to policy", limited, func() string { return accountUser(map[string]any{"rate_limit": limit(10)}) },
				map[string]any{"role": "policy", "policies": []string{w.polA1}}},
			{"networks-limited: viewer to admin", netLimited, func() string { return accountUser(map[string]any{"allowed_cidrs": []string{"127.0.0.1/32"}}) },
				map[string]any{"role": "admin"}},
			{"organization admin: more accounts", orgLimited, func() string { return orgUser(map[string]any{"rate_limit": limit(10)}) },
				map[string]any{"accounts": []string{w.a1, w.a2}, "role": "admin"}},
			{"rate-limited: disabling an unlimited user", limited, func() string { return accountUser(nil) }, map[string]any{"disabled": true}},
			{"rate-limited: the role it has, renamed", limited, func() string { return accountUser(nil) }, map[string]any{"role": "viewer", "name": "renamed"}},
			{"rate-limited: itself", limited, func() string { return limitedID }, map[string]any{"role": "admin", "description": "mine"}},
			{"unlimited account admin: viewer to admin", w.acctAdminA1, func() string { return accountUser(nil) }, map[string]any{"role": "admin"}},
			{"unlimited organization admin: more accounts", w.orgAdmin, func() string { return orgUser(nil) }, map[string]any{"accounts": []string{w.a1, w.a2}, "role": "admin"}},
			{"the operator", "", func() string { return accountUser(nil) }, map[string]any{"role": "admin"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				e.must(e.call(tt.tok, "PATCH", o+"/users/"+tt.target(), tt.body), 200)
			})
		}
	})

	// limitedRace has the operator turn target's limit on and off while the
	// limited admin makes attempt, until both outcomes have been seen
	// (and at least 40 attempts made).
	limitedRace := func(t *testing.T, target string, attempt func(i int) resp) {
		t.Helper()
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for on := false; ; on = !on {
				select {
				case <-done:
					return
				default:
				}
				var rl any
				if on {
					rl = limit(5)
				}
				e.call("", "PATCH", o+"/users/"+target, map[string]any{"rate_limit": rl})
			}
		})
		allowed, refusals := 0, 0
		for i := 0; i < 300 && (allowed == 0 || refusals == 0 || i < 40); i++ {
			switch r := attempt(i); r.status {
			case 200, 201:
				allowed++
			case 403:
				refusals++
			default:
				t.Errorf("%d %s", r.status, r.body)
			}
		}
		close(done)
		wg.Wait()
		t.Logf("%d allowed, %d refused", allowed, refusals)
		if allowed == 0 || refusals == 0 {
			t.Fatalf("the race was not exercised: %d allowed, %d refused", allowed, refusals)
		}
	}

	t.Run("a change of role is judged on the user as written", func(t *testing.T) {
		target := accountUser(map[string]any{"rate_limit": limit(5)})
		limitedRace(t, target, func(i int) resp {
			return e.call(limited, "PATCH", o+"/users/"+target, map[string]any{"role": []string{"admin", "viewer"}[i%2]})
		})
		n := writtenWithinLimit(t, e, w.org, limitedID, target, "user.update", func(before, written userAt) bool {
			return before.Role != written.Role
		})
		if n == 0 {
			t.Fatal("no change of role was audited")
		}
	})

	t.Run("a token is judged on its user as written", func(t *testing.T) {
		target := accountUser(map[string]any{"rate_limit": limit(5)})
		limitedRace(t, target, func(int) resp {
			r := e.call(limited, "POST", o+"/users/"+target+"/tokens", map[string]any{"name": "raced"})
			if r.status == 201 { // stay below the tokens a user may hold
				e.must(e.call(limited, "DELETE", o+"/users/"+target+"/tokens/"+r.field(t, "id"), nil), 204)
			}
			return r
		})
		if writtenWithinLimit(t, e, w.org, limitedID, target, "token.create", nil) == 0 {
			t.Fatal("no token creation was audited")
		}
	})
}

// userAt is what grant checks read of a user.
type userAt struct {
	Role      string
	RateLimit *struct{ Requests int } `json:"rate_limit"`
}

// writtenWithinLimit checks the events of action by actor about target
// (the user, or the user of a token) that count: at the revision of each,
// the user as the transaction found it and as it left it must carry a
// rate_limit. counts (nil: every event) picks the events to check, from the
// user before and after. It returns how many it checked.
func writtenWithinLimit(t *testing.T, e *env, org, actor, target, action string, counts func(before, written userAt) bool) int {
	t.Helper()
	c := e.etcd.Client()
	events, err := c.Get(e.ctx(), "/tg/audit/"+org+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	read := func(rev int64) userAt {
		t.Helper()
		r, err := c.Get(e.ctx(), "/tg/users/"+org+"/"+target, clientv3.WithRev(rev))
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("the user at revision %d: %v, %v", rev, r, err)
		}
		var u userAt
		if err := json.Unmarshal(r.Kvs[0].Value, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	n := 0
	for _, kv := range events.Kvs {
		var ev struct {
			Action, Target, User string
			Actor                struct{ ID string }
		}
		if err := json.Unmarshal(kv.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Action != action || ev.Target != target && ev.User != target || ev.Actor.ID != actor {
			continue
		}
		before, written := read(kv.CreateRevision-1), read(kv.CreateRevision)
		if counts != nil && !counts(before, written) {
			continue
		}
		n++
		if before.RateLimit == nil || written.RateLimit == nil {
			t.Errorf("revision %d: %s by the limited admin on a user without a limit (role %q to %q)", kv.CreateRevision, action, before.Role, written.Role)
		}
	}
	return n
}

// TestPolicyRewriteIsAGrant: rewriting a policy changes what each of its
// holders may do, so an admin with a rate_limit may rewrite only policies
// whose holders are all within its limits (found by black-box attack: a
// limited admin opened an unlimited policy user's policy to every method).
func TestPolicyRewriteIsAGrant(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	_, limited := e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1}, "role": "admin",
		"rate_limit": map[string]any{"requests": 10, "window": "1m"}})
	open := map[string]any{"name": "everything", "statements": []map[string]any{{"effect": "allow", "methods": []string{"*"}, "paths": []string{"/**"}}}}

	// An unlimited user holds the account policy: refused, unchanged.
	e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "policy", "policies": []string{w.polA1}})
	before := e.must(e.call("", "GET", o+"/policies/"+w.polA1, nil), 200)
	r := e.call(limited, "PUT", o+"/policies/"+w.polA1, open)
	if r.status != 403 || r.code != "forbidden" || !strings.Contains(string(r.body), "cannot grant more") {
		t.Fatalf("rewriting an unlimited user's policy: %d %s", r.status, r.body)
	}
	if after := e.must(e.call("", "GET", o+"/policies/"+w.polA1, nil), 200); string(after.body) != string(before.body) {
		t.Fatalf("a refused PUT changed the policy:\n%s\n%s", before.body, after.body)
	}
	// A policy whose holders are within its limits, or that nobody
	// holds, it may rewrite; the operator may rewrite any.
	e.programmatic(w.org, map[string]any{"level": "account", "account": w.a2, "role": "policy", "policies": []string{w.polA2},
		"rate_limit": map[string]any{"requests": 5, "window": "1m"}})
	e.must(e.call(limited, "PUT", o+"/policies/"+w.polA2, open), 200)
	e.must(e.call(limited, "PUT", o+"/policies/"+w.polOrg, open), 200)
	e.must(e.call("", "PUT", o+"/policies/"+w.polA1, open), 200)
}

// An organization-level admin manages its whole organization: its own
// accounts bound what its tokens reach through the gateway, not what it
// manages. Confining it by its accounts would be theatre, since it may
// create a user of any account and take that user's token; an admin meant
// for some accounts only is made account-level (README, "Who may do what").
// This pins the choice: the three requests below are one power.
func TestOrganizationAdminManagesEveryAccount(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	id, tok := e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1}, "role": "admin"})

	// A user of a2, and its token: reach into a2 without touching itself.
	u := e.must(e.call(tok, "POST", o+"/users", map[string]any{"type": "programmatic", "name": "a2-bot",
		"level": "account", "account": w.a2, "role": "editor"}), 201)
	if u.field(t, "token", "secret") == "" {
		t.Fatal("no token for the a2 user")
	}
	e.must(e.call(tok, "POST", o+"/users/"+w.userA2+"/tokens", map[string]any{"name": "taken"}), 201)
	// Hence granting itself a2 gives it nothing new, and is allowed.
	e.must(e.call(tok, "PATCH", o+"/users/"+id, map[string]any{"accounts": []string{w.a1, w.a2}}), 200)

	// An account-level admin of a1 is confined to a1 in all three ways.
	acct := w.acctAdminA1
	refused := func(r resp) {
		t.Helper()
		if r.status != 403 && r.status != 400 {
			t.Fatalf("an account admin of a1 reached a2: %d %s", r.status, r.body)
		}
	}
	refused(e.call(acct, "POST", o+"/users", map[string]any{"type": "programmatic", "name": "a2-bot",
		"level": "account", "account": w.a2, "role": "editor"}))
	refused(e.call(acct, "POST", o+"/users/"+w.userA2+"/tokens", map[string]any{"name": "taken"}))
	refused(e.call(acct, "PATCH", o+"/users/"+w.acctAdminA1ID, map[string]any{"accounts": []string{w.a1, w.a2}}))
}
