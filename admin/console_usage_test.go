package admin_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tokengate/tokengate/module/store"
)

// usageReport is a user's usage as the API answers it.
type usageReport struct {
	Requests int64            `json:"requests"`
	Outcomes map[string]int64 `json:"outcomes"`
	Hours    []struct {
		Hour     string           `json:"hour"`
		Outcomes map[string]int64 `json:"outcomes"`
	} `json:"hours"`
	Routes []usageRoute `json:"routes"`
}

type usageRoute struct {
	Account   string `json:"account"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Statement string `json:"statement"`
	Outcome   string `json:"outcome"`
	Count     int64  `json:"count"`
}

// waitUsageLoaded waits until the usage view shows name's usage.
func (s *session) waitUsageLoaded(name string) {
	s.t.Helper()
	s.waitFor("the usage of "+name+" has loaded", `(() => {
		const view = document.getElementById("view-usage");
		return !view.hidden && view.getAttribute("aria-busy") === "false" &&
			document.getElementById("usage-title").textContent === `+jsString("Usage of "+name)+`;
	})()`)
}

// TestConsoleUsage: a user's usage view shows what clients sent through
// the gateway — totals, top routes, refusals, and a chart with one bar
// group per hour with requests — and its advice; Apply sends a suggestion
// as the API's own calls, shows the API's refusal, and changes the user.
func TestConsoleUsage(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	readerID, reader := e.programmatic(w.org, map[string]any{"level": "organization", "role": "editor", "name": "report-reader",
		"description": "Reads the billing reports", "accounts": []string{w.production, w.staging}})
	e.syncCache()
	for _, r := range []struct {
		method, path string
		n, status    int
	}{
		{"GET", "/api/reports/7?accountId=" + w.production, 3, 200},
		{"GET", "/api/reports?accountId=" + w.production, 1, 200},
		{"HEAD", "/api/clusters/1?accountId=" + w.production, 2, 200},
		{"GET", "/api/clusters?accountId=" + w.globexMain, 1, 403},
	} {
		e.sendN(reader, r.method, e.siteURL+r.path, r.n, r.status)
	}
	e.flushRequests()
	var api usageReport
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+readerID+"/usage", nil), 200).json(t, &api)
	sent := map[string]int64{"GET /api/reports admitted": 4, "HEAD /api/clusters admitted": 2, "GET /api/clusters account_forbidden": 1}
	if got := routeCounts(api.Routes); !maps.Equal(got, sent) {
		t.Fatalf("the API counts %v, want %v", got, sent)
	}

	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	// The row's Usage link, with the keyboard.
	s.do("opening the usage", chromedp.Focus(chromedp.Search(`//tr[@data-user-id="`+readerID+`"]//a[contains(@class, "usage-link")]`)),
		chromedp.KeyEvent(kb.Enter))
	s.waitUsageLoaded("report-reader")
	if id := s.activeID(); id != "usage-title" {
		t.Errorf("focus on the usage view is on %q, want its heading", id)
	}
	s.checkAccessible("usage")

	// Totals, and the top routes as sent.
	totals := eval[[]string](s, "reading the totals", `["usage-requests", "usage-admitted", "usage-refused"].map(id => document.getElementById(id).textContent)`)
	if !slices.Equal(totals, []string{"7", "6", "1"}) {
		t.Errorf("the totals read %v, want requests 7, admitted 6, refused 1", totals)
	}
	var shown []usageRoute
	if err := json.Unmarshal([]byte(eval[string](s, "reading the routes", `JSON.stringify([...document.querySelectorAll("#usage-routes-body tr")].map(r => ({
		account: r.dataset.account, method: r.dataset.method, route: r.dataset.route, statement: r.dataset.statement,
		outcome: r.dataset.outcome, count: Number(r.dataset.count)})))`)), &shown); err != nil {
		t.Fatal(err)
	}
	if got := routeCounts(shown); !maps.Equal(got, sent) {
		t.Errorf("the top routes show %v, want what was sent, %v", got, sent)
	}
	if fmt.Sprint(shown) != fmt.Sprint(api.Routes) {
		t.Errorf("the top routes show %+v, the API %+v", shown, api.Routes)
	}
	if text := s.text("usage-routes-body"); !strings.Contains(text, "Production ("+w.production+")") {
		t.Errorf("the routes do not name the account: %q", text)
	}
	if got := eval[[]string](s, "reading the refusals", `[...document.querySelectorAll("#usage-refusals-body tr")].map(r => r.dataset.outcome + " " + r.cells[2].textContent)`); !slices.Equal(got, []string{"account_forbidden 1"}) {
		t.Errorf("the refusals read %v", got)
	}

	// The chart: one bar group per hour with requests, stacked by outcome.
	type group struct {
		Hour   string
		Total  int64
		Counts map[string]int64
	}
	var groups []group
	if err := json.Unmarshal([]byte(eval[string](s, "reading the chart", `JSON.stringify([...document.querySelectorAll("#usage-chart g.bar-group")].map(g => ({
		Hour: g.dataset.hour, Total: Number(g.dataset.total),
		Counts: Object.fromEntries([...g.querySelectorAll("rect.bar")].map(r => [r.dataset.outcome, Number(r.dataset.count)]))})))`)), &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(api.Hours) || len(groups) == 0 {
		t.Fatalf("the chart has %d bar groups, the API %d hours with requests", len(groups), len(api.Hours))
	}
	for i, h := range api.Hours {
		var total int64
		for _, n := range h.Outcomes {
			total += n
		}
		if g := groups[i]; g.Hour != h.Hour || g.Total != total || !maps.Equal(g.Counts, h.Outcomes) {
			t.Errorf("bar group %d is %+v, the API's hour %+v", i, g, h)
		}
	}
	if n := eval[int](s, "counting the hours table", `document.querySelectorAll("#usage-hours-body tr").length`); n != len(api.Hours) {
		t.Errorf("the chart's table has %d hours, want %d", n, len(api.Hours))
	}
	if summary := s.text("usage-chart-summary"); !strings.HasPrefix(summary, "7 requests in ") {
		t.Errorf("the chart's summary reads %q", summary)
	}

	// The window: the last 24 hours hold the same requests.
	s.choose("usage-window", "24")
	s.waitFor("the day's usage has loaded", `document.getElementById("view-usage").getAttribute("aria-busy") === "false" &&
		document.getElementById("usage-chart-summary").textContent.includes(" of 24 hours")`)
	if got := s.text("usage-requests"); got != "7" {
		t.Errorf("the last 24 hours show %s requests, want 7", got)
	}
	if n := eval[int](s, "counting the bar groups", `document.querySelectorAll("#usage-chart g.bar-group").length`); n != len(api.Hours) {
		t.Errorf("over 24 hours the chart has %d bar groups, want %d", n, len(api.Hours))
	}
	s.screenshot("usage")

	// Advice: staging unused; narrower role and accounts (no policy: the
	// policy role is for account-level users).
	if text := s.text("advice-accounts"); !strings.Contains(text, w.staging) || strings.Contains(text, w.production) {
		t.Errorf("unused accounts read %q, want staging only", text)
	}
	kinds := eval[[]string](s, "reading the suggestions", `[...document.querySelectorAll("#advice-suggestions article")].map(a => a.dataset.kind)`)
	if !slices.Equal(kinds, []string{"accounts", "role"}) {
		t.Fatalf("suggestions %v, want accounts, role", kinds)
	}
	if patch := eval[string](s, "reading the role patch", `document.querySelector('#advice-suggestions article[data-kind="role"] pre.patch').textContent`); !strings.Contains(patch, `"role": "viewer"`) {
		t.Errorf("the role suggestion shows the patch %q", patch)
	}
	eval[any](s, "showing the advice", `document.getElementById("advice-panel").scrollIntoView({block: "start"})`)
	s.screenshot("advice")

	apply := func(kind string) {
		t.Helper()
		s.do("applying "+kind, chromedp.Click(chromedp.Search(`//article[@data-kind="`+kind+`"]//button[contains(@class, "apply-suggestion")]`)))
		s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
		if id := s.activeID(); id != "confirm-no" {
			t.Errorf("focus in the confirmation is on %q, want Cancel", id)
		}
		s.do("confirming", chromedp.Click(chromedp.ID("confirm-yes")))
	}

	// The role suggestion: an ordinary PATCH; the view is read again.
	apply("role")
	s.waitFor("the change is applied", `document.getElementById("status").textContent.includes("applied") &&
		document.getElementById("view-usage").getAttribute("aria-busy") === "false" &&
		document.getElementById("usage-scope").textContent.includes("Viewer")`)
	if role := e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+readerID, nil), 200).field(t, "role"); role != "viewer" {
		t.Errorf("after applying the role suggestion the role is %q, want viewer", role)
	}
	if kinds := eval[[]string](s, "reading the suggestions", `[...document.querySelectorAll("#advice-suggestions article")].map(a => a.dataset.kind)`); slices.Contains(kinds, "role") {
		t.Errorf("the role is still suggested once applied: %v", kinds)
	}
	var audit struct {
		Events []struct {
			Action, Target string
			Actor          struct{ ID string }
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?limit=1", nil), 200).json(t, &audit)
	if ev := audit.Events[0]; ev.Action != "user.update" || ev.Target != readerID || ev.Actor.ID != w.adminID {
		t.Errorf("the newest event is %+v, want Ana's user.update of %s", ev, readerID)
	}

	// A suggestion the API refuses (the user was deleted meanwhile): the
	// API's message shows.
	e.must(e.call("", "DELETE", "/orgs/"+w.org+"/users/"+readerID, nil), 204)
	apply("accounts")
	s.waitFor("the refusal shows", `document.getElementById("advice-error").textContent.includes("not found")`)

	// Back to the list the user is in.
	s.click("Back to Programmatic Users")
	s.waitUsersLoaded("Organization-level users of acme")
}

// routeCounts reads routes as "METHOD route outcome" → count.
func routeCounts(routes []usageRoute) map[string]int64 {
	got := map[string]int64{}
	for _, r := range routes {
		got[r.Method+" "+r.Route+" "+r.Outcome] += r.Count
	}
	return got
}

// TestConsoleUserListUsage: the list shows each user's requests of the
// last 7 days, read in one call per draw, and marks dormant, as the
// gateway reports user.dormant, the users whose last activity (a token's
// last use, else their creation) is older than the organization's
// dormant_after.
func TestConsoleUserListUsage(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	e.must(e.call("", "PATCH", "/orgs/"+w.org, map[string]any{"dormant_after": "7d"}), 200)
	// Users created ten days ago, written as the store would have then.
	past := store.New(e.etcd.Client(), "/tg")
	past.Now = func() time.Time { return time.Now().Add(-10 * 24 * time.Hour) }
	old := func(name string) string {
		t.Helper()
		u, err := past.CreateUser(e.ctx(), store.User{Org: w.org, Type: store.TypeProgrammatic, Level: store.LevelOrganization,
			Accounts: []string{w.production}, Role: store.RoleViewer, Name: name}, nil, store.Actor{ID: "operator", Type: store.ActorOperator})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	idleID, busyID := old("old-idle"), old("old-busy")
	busy := e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+busyID+"/tokens", map[string]any{"name": "cron"}), 201).field(t, "secret")
	e.syncCache()
	e.sendN(busy, "GET", e.siteURL+"/api/metrics?accountId="+w.production, 3, 200)
	e.sendN(busy, "POST", e.siteURL+"/api/metrics?accountId="+w.production, 1, 403)
	e.flushRequests()
	e.flushUse()

	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	for _, c := range []struct {
		name, requests string
		dormant        bool
	}{
		{"old-busy", "4\n1 refused", false},
		{"old-idle", "0", true},
		{"metrics-exporter", "0", false}, // created just now
		{"terraform", "0", false},
	} {
		if got := readRow[string](s, c.name, `r.cells[6].innerText`); got != c.requests {
			t.Errorf("%s: Requests (7 d) reads %q, want %q", c.name, got, c.requests)
		}
		badge := readRow[bool](s, c.name, `r.querySelector(".badge.dormant") !== null`)
		if badge != c.dormant || readRow[string](s, c.name, `r.dataset.dormant`) != fmt.Sprint(c.dormant) {
			t.Errorf("%s: dormant badge %v, want %v", c.name, badge, c.dormant)
		}
	}
	if id := eval[string](s, "reading the idle user", userRow("old-idle")+`.dataset.userId`); id != idleID {
		t.Errorf("old-idle is listed as %s, want %s", id, idleID)
	}
	if head := eval[string](s, "reading the column", `document.querySelectorAll("#users-table thead th")[6].textContent`); head != "Requests (7 d)" {
		t.Errorf("the column is headed %q", head)
	}
	s.choose("users-sort", "requests")
	if first := eval[string](s, "reading the first row", `[...document.querySelectorAll("#users-body tr")].find(r => !r.hidden).dataset.userId`); first != busyID {
		t.Errorf("sorted by requests, the first user is %s, want old-busy (%s)", first, busyID)
	}
	eval[any](s, "showing the list", `document.getElementById("users-table").scrollIntoView({block: "start"})`)
	s.screenshot("user-list-usage")

	// One usage call per draw of the list, none per row.
	eval[any](s, "watching the requests", `(() => {
		window.usageCalls = [];
		const orig = window.fetch;
		window.fetch = (url, init) => { if (/usage/.test(String(url))) window.usageCalls.push(String(url)); return orig(url, init); };
	})()`)
	s.click("Account")
	s.waitUsersLoaded("Account-level users of")
	s.click("Organization")
	s.waitUsersLoaded("Organization-level users of acme")
	s.rowCells("old-busy")
	calls := eval[[]string](s, "reading the requests", `window.usageCalls`)
	if len(calls) != 2 || !strings.HasSuffix(calls[0], "/orgs/"+w.org+"/usage") || !strings.HasSuffix(calls[1], "/orgs/"+w.org+"/usage") {
		t.Errorf("two draws of the list asked for %q, want the organization's usage once each", calls)
	}
}
