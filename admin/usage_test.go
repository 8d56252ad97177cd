package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/reliability"
	"github.com/tokengate/tokengate/module/tokengate"
)

// flushRequests writes this gateway's request counts now.
func (e *env) flushRequests() {
	e.t.Helper()
	app, _ := caddy.ActiveContext().App("tokengate")
	if err := app.(*tokengate.App).Verifier().FlushRequests(e.ctx()); err != nil {
		e.t.Fatal(err)
	}
}

// sendN sends the same request n times and checks each answer's status.
func (e *env) sendN(tok, method, url string, n, status int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		if r := e.send(tok, method, url, nil, ""); r.status != status {
			e.t.Fatalf("%s %s: %d %s, want %d", method, url, r.status, r.body, status)
		}
	}
}

// usageCounts reads a user's usage as "METHOD route outcome" → count.
func (e *env) usageCounts(org, user string) (map[string]int64, int64) {
	e.t.Helper()
	var rep struct {
		Requests int64
		Routes   []struct {
			Method, Route, Outcome string
			Count                  int64
		}
	}
	e.must(e.call("", "GET", "/orgs/"+org+"/users/"+user+"/usage", nil), 200).json(e.t, &rep)
	got := map[string]int64{}
	for _, r := range rep.Routes {
		got[r.Method+" "+r.Route+" "+r.Outcome] += r.Count
	}
	return got, rep.Requests
}

// TestUsageCountsWhatClientsSent: what the usage API reports of a user
// equals what clients sent, per method, route and outcome, summed over two
// gateways (another process on the same etcd); the organization's usage
// lists each user's totals; account admins see only their users.
func TestUsageCountsWhatClientsSent(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	second := reliability.StartGateway(t, reliability.GatewayConfig{Name: "second", Endpoints: []string{e.etcd.Endpoint()},
		Prefix: "/tg", Upstream: reliability.EchoUpstream(t)})
	editorID, editor := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "editor"})
	viewerID, viewer := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a2, "role": "viewer"})
	e.syncCache()

	e.sendN(editor, "GET", e.siteURL+"/api/things/1", 3, 200)
	e.sendN(editor, "POST", e.siteURL+"/api/things", 2, 200)
	e.sendN(editor, "GET", e.siteURL+"/api/other", 1, 200)
	e.sendN(viewer, "DELETE", e.siteURL+"/api/things/1", 2, 403)
	e.sendN(editor, "GET", second.URL+"/api/things/2", 4, 200)
	e.sendN(viewer, "GET", second.URL+"/api/things/2", 1, 200)
	e.sendN(viewer, "PUT", second.URL+"/api/things/2", 1, 403)
	// Each gateway writes its rollups: this one now, the second as it stops.
	e.flushRequests()
	if _, err := second.Terminate(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		user  string
		want  map[string]int64
		total int64
	}{
		{editorID, map[string]int64{"GET /api/things admitted": 7, "POST /api/things admitted": 2, "GET /api/other admitted": 1}, 10},
		{viewerID, map[string]int64{"DELETE /api/things role_forbidden": 2, "GET /api/things admitted": 1, "PUT /api/things role_forbidden": 1}, 4},
	} {
		got, total := e.usageCounts(w.org, c.user)
		if fmt.Sprint(got) != fmt.Sprint(c.want) || total != c.total {
			t.Errorf("usage of %s: %v (%d requests), want %v (%d)", c.user, got, total, c.want, c.total)
		}
	}

	var org struct {
		Users []struct {
			UserID            string `json:"user_id"`
			Requests, Refused int64
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/usage", nil), 200).json(t, &org)
	if fmt.Sprint(org.Users) != fmt.Sprint([]any{struct {
		UserID            string `json:"user_id"`
		Requests, Refused int64
	}{editorID, 10, 0}, struct {
		UserID            string `json:"user_id"`
		Requests, Refused int64
	}{viewerID, 4, 3}}) {
		t.Errorf("organization usage: %+v", org.Users)
	}
	// An account admin of a1 sees a1's editor, not a2's viewer, and not
	// the viewer's own usage.
	var mine struct {
		Users []struct {
			UserID string `json:"user_id"`
		}
	}
	e.must(e.call(w.acctAdminA1, "GET", "/orgs/"+w.org+"/usage", nil), 200).json(t, &mine)
	if len(mine.Users) != 1 || mine.Users[0].UserID != editorID {
		t.Errorf("the account admin of a1 sees %+v", mine.Users)
	}
	if r := e.call(w.acctAdminA1, "GET", "/orgs/"+w.org+"/users/"+viewerID+"/usage", nil); r.status != 403 {
		t.Errorf("an account admin read another account's user's usage: %d", r.status)
	}
	if r := e.call(w.otherOrgAdmin, "GET", "/orgs/"+w.org+"/usage", nil); r.status != 403 {
		t.Errorf("another organization's admin read the usage: %d", r.status)
	}
	for _, q := range []string{"?from=yesterday", "?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "?to=2026-01-01T00:00:00Z&from=2026-01-02T00:00:00Z", "?days=3"} {
		if r := e.call("", "GET", "/orgs/"+w.org+"/users/"+editorID+"/usage"+q, nil); r.status != 400 || r.code != "invalid_request" {
			t.Errorf("usage%s: %d %s", q, r.status, r.body)
		}
	}
}

// TestAdviceFromUsage: a user that only read is advised to become a
// viewer and to keep the accounts it used; an account-level one also a
// policy of exactly the routes it used, which, created and granted as
// advised, admits what it did; a policy user learns which statements admitted nothing; a user
// with no request is advised to be disabled. Applying a suggestion is an
// ordinary, audited PATCH.
func TestAdviceFromUsage(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	readerID, reader := e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1, w.a2}, "role": "editor"})
	pol := e.must(e.call("", "POST", "/orgs/"+w.org+"/policies", map[string]any{"name": "p", "account": w.a1, "statements": []map[string]any{
		{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/api/**"}},
		{"effect": "allow", "methods": []string{"DELETE"}, "paths": []string{"/api/admin/**"}},
	}}), 201).field(t, "id")
	policyUserID, policyUser := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "policy", "policies": []string{pol}})
	idleID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	localID, local := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "editor"})
	e.syncCache()
	e.sendN(local, "GET", e.siteURL+"/api/reports/7", 2, 200)
	e.sendN(reader, "GET", e.siteURL+"/api/reports/7?accountId="+w.a1, 3, 200)
	e.sendN(reader, "HEAD", e.siteURL+"/api/reports?accountId="+w.a1, 1, 200)
	e.sendN(policyUser, "GET", e.siteURL+"/api/x", 2, 200)
	e.flushRequests()

	type suggestion struct {
		Kind   string
		Patch  map[string]any
		Policy *struct {
			Statements []struct {
				Effect         string
				Methods, Paths []string
			}
		}
	}
	var adv struct {
		UnusedAccounts   []string `json:"unused_accounts"`
		UnusedStatements []struct {
			Policy string
			Index  int
		} `json:"unused_statements"`
		Suggestions []suggestion
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+readerID+"/advice", nil), 200).json(t, &adv)
	kinds := map[string]suggestion{}
	for _, s := range adv.Suggestions {
		kinds[s.Kind] = s
	}
	if fmt.Sprint(adv.UnusedAccounts) != fmt.Sprint([]string{w.a2}) {
		t.Errorf("unused accounts %v, want [%s]", adv.UnusedAccounts, w.a2)
	}
	if kinds["role"].Patch["role"] != "viewer" {
		t.Errorf("a user that only read was not advised to be a viewer: %+v", adv.Suggestions)
	}
	if fmt.Sprint(kinds["accounts"].Patch["accounts"]) != fmt.Sprint([]any{w.a1}) {
		t.Errorf("accounts suggestion %+v", kinds["accounts"])
	}
	if _, ok := kinds["policy"]; ok {
		t.Errorf("an organization-level user was advised the policy role, which is for account-level users")
	}
	body, _ := json.Marshal(kinds["role"].Patch)
	e.must(e.call("", "PATCH", "/orgs/"+w.org+"/users/"+readerID, json.RawMessage(body)), 200)
	if role := e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+readerID, nil), 200).field(t, "role"); role != "viewer" {
		t.Errorf("after applying the advice the role is %q", role)
	}

	// The account-level reader: a policy of what it used, applied as
	// advised, still admits it.
	adv.Suggestions = nil
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+localID+"/advice", nil), 200).json(t, &adv)
	var draft *suggestion
	for i := range adv.Suggestions {
		if adv.Suggestions[i].Kind == "policy" {
			draft = &adv.Suggestions[i]
		}
	}
	if draft == nil || draft.Policy == nil || len(draft.Policy.Statements) != 1 || fmt.Sprint(draft.Policy.Statements[0].Methods) != "[GET]" ||
		fmt.Sprint(draft.Policy.Statements[0].Paths) != "[/api/reports /api/reports/**]" {
		t.Fatalf("policy suggestion %+v", draft)
	}
	var raw struct {
		Suggestions []struct {
			Kind   string
			Policy json.RawMessage
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+localID+"/advice", nil), 200).json(t, &raw)
	var policyBody json.RawMessage
	for _, sg := range raw.Suggestions {
		if sg.Kind == "policy" {
			policyBody = sg.Policy
		}
	}
	newPol := e.must(e.call("", "POST", "/orgs/"+w.org+"/policies", policyBody), 201).field(t, "id")
	e.must(e.call("", "PATCH", "/orgs/"+w.org+"/users/"+localID, map[string]any{"role": "policy", "policies": []string{newPol}}), 200)
	e.syncCache()
	e.sendN(local, "GET", e.siteURL+"/api/reports/8", 1, 200)
	e.sendN(local, "DELETE", e.siteURL+"/api/reports/8", 1, 403)

	adv.Suggestions = nil
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+policyUserID+"/advice?days=7", nil), 200).json(t, &adv)
	if len(adv.UnusedStatements) != 1 || adv.UnusedStatements[0].Policy != pol || adv.UnusedStatements[0].Index != 1 {
		t.Errorf("unused statements %+v, want %s #1", adv.UnusedStatements, pol)
	}

	adv.Suggestions = nil
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+idleID+"/advice", nil), 200).json(t, &adv)
	if len(adv.Suggestions) != 1 || adv.Suggestions[0].Kind != "disable" || adv.Suggestions[0].Patch["disabled"] != true {
		t.Errorf("an idle user's advice: %+v", adv.Suggestions)
	}
}

// TestLastUsedFrom: a token's listing names the client address and user
// agent of its last use, as Caddy saw the client, also when the request was
// refused after the token was found good; never for a token not yet used.
func TestLastUsedFrom(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	userID, tok := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	second := e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+userID+"/tokens", map[string]any{"name": "spare"}), 201).field(t, "id")
	e.syncCache()
	req, err := http.NewRequest("GET", e.siteURL+"/api/things", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "deploy-bot/1.2")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// A third token, presented on a UI route and refused there, counts as
	// used: the listing says where a token is being presented.
	made := e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+userID+"/tokens", map[string]any{"name": "ui"}), 201)
	refusedID := made.field(t, "id")
	e.syncCache()
	if r := e.gateway(made.field(t, "secret"), "/ui/home"); r.status != 403 || r.code != "programmatic_ui_forbidden" {
		t.Fatalf("a UI route: %d %s", r.status, r.code)
	}
	e.flushUse()
	var list struct {
		Tokens []struct {
			ID           string
			LastUsedAt   *time.Time `json:"last_used_at"`
			LastUsedFrom *struct {
				IP        string `json:"ip"`
				UserAgent string `json:"user_agent"`
			} `json:"last_used_from"`
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+userID+"/tokens", nil), 200).json(t, &list)
	for _, tk := range list.Tokens {
		switch {
		case tk.ID == second && (tk.LastUsedFrom != nil || tk.LastUsedAt != nil):
			t.Errorf("a token never used shows a use: %+v %v", tk.LastUsedFrom, tk.LastUsedAt)
		case tk.ID == refusedID && (tk.LastUsedAt == nil || tk.LastUsedFrom == nil):
			t.Errorf("a token refused on a UI route shows no use: %+v %v", tk.LastUsedFrom, tk.LastUsedAt)
		case tk.ID == refusedID:
		case tk.ID != second && (tk.LastUsedFrom == nil || tk.LastUsedFrom.IP != "127.0.0.1" || tk.LastUsedFrom.UserAgent != "deploy-bot/1.2"):
			t.Errorf("the used token's last client: %+v", tk.LastUsedFrom)
		}
	}
}

// TestReportOnly: rights proposed in report-only mode change nothing the
// gateway admits, and every admitted request they would refuse is counted
// with its code and route; once committed, the gateway refuses exactly
// those requests, with those codes.
func TestReportOnly(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	userID, tok := e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1, w.a2}, "role": "editor"})
	path := "/orgs/" + w.org + "/users/" + userID
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"proposed": map[string]any{"role": "policy"}}, "proposed.role"},
		{map[string]any{"proposed": map[string]any{"role": "boss"}}, "proposed.role"},
		{map[string]any{"proposed": map[string]any{"role": "viewer", "accounts": []string{"act-00000000"}}}, "proposed.accounts"},
		{map[string]any{"proposed": map[string]any{"role": "viewer", "color": "red"}}, "proposed.color"},
	} {
		if r := e.call("", "PATCH", path, bad.body); r.status != 400 || !strings.Contains(string(r.body), bad.field) {
			t.Errorf("proposed %v: %d %s, want 400 naming %s", bad.body, r.status, r.body, bad.field)
		}
	}
	proposed := map[string]any{"role": "viewer", "accounts": []string{w.a1}}
	var shown struct {
		Role     string
		Proposed map[string]any
	}
	e.must(e.call("", "PATCH", path, map[string]any{"proposed": proposed}), 200).json(t, &shown)
	if shown.Role != "editor" || shown.Proposed["role"] != "viewer" {
		t.Fatalf("after proposing: %+v", shown)
	}
	e.syncCache()
	requests := func(status map[string]int) map[string]int64 {
		t.Helper()
		refused := map[string]int64{}
		for _, c := range []struct {
			method, url string
			n           int
		}{
			{"GET", "/api/things/1?accountId=" + w.a1, 3},
			{"POST", "/api/things?accountId=" + w.a1, 2},
			{"GET", "/api/things/2?accountId=" + w.a2, 1},
		} {
			for i := 0; i < c.n; i++ {
				r := e.send(tok, c.method, e.siteURL+c.url, nil, "")
				if r.status != 200 {
					refused[c.method+" "+r.code]++
				}
			}
		}
		return refused
	}
	if refused := requests(nil); len(refused) != 0 {
		t.Fatalf("report-only refused requests: %v", refused)
	}
	e.flushRequests()
	var rep struct {
		Requests    int64
		WouldRefuse int64 `json:"would_refuse"`
		Would       []struct {
			Method, Route, Outcome, Account string
			Count                           int64
		} `json:"would_refuse_routes"`
	}
	e.must(e.call("", "GET", path+"/usage", nil), 200).json(t, &rep)
	would := map[string]int64{}
	for _, r := range rep.Would {
		would[r.Method+" "+r.Outcome] += r.Count
	}
	if rep.Requests != 6 || rep.WouldRefuse != 3 {
		t.Fatalf("usage: %d requests, %d would be refused; want 6 and 3", rep.Requests, rep.WouldRefuse)
	}

	// Committed: the same requests, refused as counted.
	e.must(e.call("", "PATCH", path, map[string]any{"role": "viewer", "accounts": []string{w.a1}, "proposed": nil}), 200)
	e.syncCache()
	refused := requests(nil)
	if fmt.Sprint(refused) != fmt.Sprint(would) {
		t.Errorf("enforced, the rights refused %v; report-only counted %v", refused, would)
	}
}

// TestStaleProposalNeverBlocksAChange: proposed rights whose policy was
// deleted end with the next change of the user; disabling it works.
func TestStaleProposalNeverBlocksAChange(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	userID, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	pol := e.must(e.call("", "POST", "/orgs/"+w.org+"/policies", map[string]any{"name": "pz", "account": w.a1, "statements": []map[string]any{
		{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/api/**"}}}}), 201).field(t, "id")
	path := "/orgs/" + w.org + "/users/" + userID
	e.must(e.call("", "PATCH", path, map[string]any{"proposed": map[string]any{"role": "policy", "policies": []string{pol}}}), 200)
	e.must(e.call("", "DELETE", "/orgs/"+w.org+"/policies/"+pol, nil), 204)
	var u struct {
		Disabled bool
		Proposed map[string]any
	}
	e.must(e.call(w.acctAdminA1, "PATCH", path, map[string]any{"disabled": true}), 200).json(t, &u)
	if !u.Disabled || u.Proposed != nil {
		t.Errorf("after disabling: %+v", u)
	}
}
