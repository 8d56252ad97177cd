package admin_test

import (
	"strings"
	"testing"
	"time"
)

// TestMaxTokenLifetime: an organization's max_token_lifetime bounds every
// new token — one asked for longer is refused naming expires_in, one asked
// without an expiry gets the bound, a new user's first token too — and
// setting it lists the live tokens that outlive it. Only the operator and
// organization-level admins change the organization; the change is
// audited.
func TestMaxTokenLifetime(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	userID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})

	for _, c := range []struct {
		tok    string
		status int
	}{{w.acctAdminA1, 403}, {w.otherOrgAdmin, 403}, {w.viewerA1, 403}} {
		if r := e.call(c.tok, "PATCH", "/orgs/"+w.org, map[string]any{"max_token_lifetime": "1d"}); r.status != c.status {
			t.Errorf("PATCH the organization: %d %s, want %d", r.status, r.body, c.status)
		}
	}
	for _, bad := range []any{"90", "0d", "1.5d", "99999d", 90} {
		if r := e.call("", "PATCH", "/orgs/"+w.org, map[string]any{"max_token_lifetime": bad}); r.status != 400 || r.code != "invalid_request" {
			t.Errorf("max_token_lifetime %v: %d %s", bad, r.status, r.body)
		}
	}
	r := e.must(e.call(w.orgAdmin, "PATCH", "/orgs/"+w.org, map[string]any{"max_token_lifetime": "90d", "dormant_after": "14d"}), 200)
	var set struct {
		MaxTokenLifetime string                         `json:"max_token_lifetime"`
		DormantAfter     string                         `json:"dormant_after"`
		Beyond           []struct{ User, Token string } `json:"tokens_beyond_max_lifetime"`
	}
	r.json(t, &set)
	if set.MaxTokenLifetime != "90d" || set.DormantAfter != "14d" || len(set.Beyond) == 0 {
		t.Fatalf("after setting: %s", r.body)
	}
	listed := false
	for _, b := range set.Beyond {
		listed = listed || b.User == userID
	}
	if !listed {
		t.Errorf("the user's token without expiry is not listed as beyond: %s", r.body)
	}

	path := "/orgs/" + w.org + "/users/" + userID + "/tokens"
	if r := e.call("", "POST", path, map[string]any{"expires_in": "2160h1s"}); r.status != 400 || r.code != "invalid_request" {
		t.Errorf("a token a second beyond the bound: %d %s", r.status, r.body)
	}
	e.must(e.call("", "POST", path, map[string]any{"expires_in": "90d"}), 201)
	if r := e.call("", "POST", path, map[string]any{"expires_in": "91d"}); r.status != 400 || r.code != "invalid_request" || !strings.Contains(string(r.body), "expires_in") {
		t.Errorf("a token beyond the bound: %d %s", r.status, r.body)
	}
	var tok struct {
		ExpiresAt *time.Time `json:"expires_at"`
	}
	e.must(e.call("", "POST", path, map[string]any{"name": "ci"}), 201).json(t, &tok)
	if tok.ExpiresAt == nil || time.Until(*tok.ExpiresAt) > 90*24*time.Hour || time.Until(*tok.ExpiresAt) < 89*24*time.Hour {
		t.Errorf("a token without expires_in expires at %v, want 90 days from now", tok.ExpiresAt)
	}
	e.must(e.call("", "POST", path, map[string]any{"expires_in": "30d"}), 201)
	var created struct {
		Token struct {
			ExpiresAt *time.Time `json:"expires_at"`
		} `json:"token"`
	}
	e.must(e.call("", "POST", "/orgs/"+w.org+"/users", map[string]any{"type": "programmatic", "name": "new", "level": "account",
		"account": w.a1, "role": "viewer"}), 201).json(t, &created)
	if created.Token.ExpiresAt == nil {
		t.Error("a new user's first token has no expiry under max_token_lifetime")
	}

	// Cleared: tokens without expiry again.
	e.must(e.call("", "PATCH", "/orgs/"+w.org, map[string]any{"max_token_lifetime": ""}), 200)
	tok.ExpiresAt = nil
	e.must(e.call("", "POST", path, map[string]any{"name": "free"}), 201).json(t, &tok)
	if tok.ExpiresAt != nil {
		t.Errorf("after clearing, a token expires at %v", tok.ExpiresAt)
	}
	var events struct {
		Events []struct{ Action, Target string }
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?action=org.update", nil), 200).json(t, &events)
	if len(events.Events) != 2 || events.Events[0].Target != w.org {
		t.Errorf("org.update events: %+v", events.Events)
	}
}
