package admin_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// trialUser is what the API shows of a user's rights and its trial.
type trialUser struct {
	Role     string
	Accounts []string
	Proposed *struct {
		Role     string
		Accounts []string
		Policies []string
	}
}

// TestConsoleTrial: try before you tighten. Try first sends the role
// suggestion as proposed rights, not enforced; once clients have used the
// user, the Trial section shows what those rights would have refused;
// Commit makes them the user's, and the gateway then refuses what the
// trial counted. End trial drops a trial, and a refusal of the API shows.
func TestConsoleTrial(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	userID, tok := e.programmatic(w.org, map[string]any{"level": "organization", "role": "editor", "name": "report-reader",
		"description": "Reads the billing reports", "accounts": []string{w.production, w.staging}})
	path := "/orgs/" + w.org + "/users/" + userID
	readUser := func() trialUser {
		t.Helper()
		var u trialUser
		e.must(e.call("", "GET", path, nil), 200).json(t, &u)
		return u
	}
	e.syncCache()
	// Reads only: the advice suggests the viewer role.
	e.sendN(tok, "GET", e.siteURL+"/api/reports/7?accountId="+w.production, 2, 200)
	e.flushRequests()

	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	s.do("opening the usage", chromedp.Click(chromedp.Search(`//tr[@data-user-id="`+userID+`"]//a[contains(@class, "usage-link")]`)))
	s.waitUsageLoaded("report-reader")
	if !eval[bool](s, "reading the trial", `document.getElementById("trial-panel").hidden`) {
		t.Error("the Trial section shows for a user with no rights under trial")
	}
	tried := eval[[]string](s, "reading the suggestions", `[...document.querySelectorAll("#advice-suggestions article")]
		.filter(a => a.querySelector("button.try-suggestion")).map(a => a.dataset.kind)`)
	if !slices.Equal(tried, []string{"accounts", "role"}) {
		t.Errorf("Try first is offered for %v, want accounts and role", tried)
	}

	// tryFirst tries a suggestion, with the keyboard, and confirms.
	tryFirst := func(kind string) {
		t.Helper()
		s.do("trying "+kind+" first", chromedp.Focus(chromedp.Search(`//article[@data-kind="`+kind+`"]//button[contains(@class, "try-suggestion")]`)),
			chromedp.KeyEvent(kb.Enter))
		s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
		if id := s.activeID(); id != "confirm-no" {
			t.Errorf("focus in the confirmation is on %q, want Cancel", id)
		}
		s.do("confirming", chromedp.Click(chromedp.ID("confirm-yes")))
		s.waitFor("the trial shows", `!document.getElementById("trial-panel").hidden &&
			document.getElementById("view-usage").getAttribute("aria-busy") === "false" &&
			document.activeElement.id === "trial-title"`)
	}
	// confirmTrial presses Commit or End trial and confirms.
	confirmTrial := func(button string) {
		t.Helper()
		s.do("pressing "+button, chromedp.Focus(chromedp.ID(button)), chromedp.KeyEvent(kb.Enter))
		s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
		s.do("confirming", chromedp.Click(chromedp.ID("confirm-yes")))
	}

	// Try first: proposed rights, the user's own unchanged.
	tryFirst("role")
	u := readUser()
	if u.Role != "editor" || u.Proposed == nil || u.Proposed.Role != "viewer" ||
		!slices.Equal(u.Proposed.Accounts, []string{w.production, w.staging}) {
		t.Fatalf("after Try first the user is %+v, want an editor trying viewer on both accounts", u)
	}
	if got := eval[string](s, "reading the proposed role", `document.querySelector("#trial-rights dd[data-role]").dataset.role`); got != "viewer" {
		t.Errorf("the Trial section shows the role %q, want viewer", got)
	}

	// Clients keep working: writes are admitted, and counted as what the
	// trial would refuse.
	e.syncCache()
	e.sendN(tok, "POST", e.siteURL+"/api/reports?accountId="+w.production, 2, 200)
	e.sendN(tok, "GET", e.siteURL+"/api/reports/8?accountId="+w.production, 1, 200)
	e.flushRequests()
	s.do("reloading", chromedp.Reload())
	s.waitUsageLoaded("report-reader")
	if summary := s.text("trial-summary"); !strings.HasPrefix(summary, "Would have refused 2 requests") {
		t.Errorf("the trial's summary reads %q", summary)
	}
	var would []usageRoute
	if err := json.Unmarshal([]byte(eval[string](s, "reading the routes", `JSON.stringify([...document.querySelectorAll("#trial-routes-body tr")].map(r => ({
		account: r.dataset.account, method: r.dataset.method, route: r.dataset.route, outcome: r.dataset.outcome,
		count: Number(r.dataset.count)})))`)), &would); err != nil {
		t.Fatal(err)
	}
	if want := []usageRoute{{Account: w.production, Method: "POST", Route: "/api/reports", Outcome: "role_forbidden", Count: 2}}; !slices.Equal(would, want) {
		t.Errorf("the trial's routes are %+v, want %+v", would, want)
	}
	if text := s.text("trial-routes-body"); !strings.Contains(text, "Production ("+w.production+")") {
		t.Errorf("the trial's routes do not name the account: %q", text)
	}
	s.checkAccessible("trial")
	eval[any](s, "showing the trial", `window.scrollTo(0, 0)`)
	s.screenshot("trial")

	// Commit: the rights tried are the user's, and the gateway refuses
	// what the trial counted.
	confirmTrial("trial-commit")
	s.waitFor("the trial is committed", `document.getElementById("status").textContent.includes("committed") &&
		document.getElementById("view-usage").getAttribute("aria-busy") === "false" &&
		document.getElementById("trial-panel").hidden &&
		document.getElementById("usage-scope").textContent.includes("Viewer")`)
	if u := readUser(); u.Role != "viewer" || u.Proposed != nil || !slices.Equal(u.Accounts, []string{w.production, w.staging}) {
		t.Errorf("after Commit the user is %+v, want a viewer of both accounts with no trial", u)
	}
	e.syncCache()
	gatewayRefuses(t, e, tok, "POST", "/api/reports?accountId="+w.production, 403, "role_forbidden")

	// End trial: the rights tried are dropped, the user's own kept.
	tryFirst("accounts")
	if u := readUser(); u.Proposed == nil || u.Proposed.Role != "viewer" || !slices.Equal(u.Proposed.Accounts, []string{w.production}) {
		t.Fatalf("after trying fewer accounts the user is %+v", u)
	}
	confirmTrial("trial-end")
	s.waitFor("the trial has ended", `document.getElementById("status").textContent.includes("Trial ended") &&
		document.getElementById("view-usage").getAttribute("aria-busy") === "false" &&
		document.getElementById("trial-panel").hidden`)
	if u := readUser(); u.Proposed != nil || u.Role != "viewer" || !slices.Equal(u.Accounts, []string{w.production, w.staging}) {
		t.Errorf("after End trial the user is %+v, want its own rights and no trial", u)
	}

	// A change the API refuses (the user was deleted meanwhile): the API's
	// message shows in the Trial section.
	tryFirst("accounts")
	e.must(e.call("", "DELETE", path, nil), 204)
	confirmTrial("trial-end")
	s.waitFor("the refusal shows", `document.getElementById("trial-error").textContent.includes("not found")`)
}

// TestConsolePolicySuggestion: an account-level user is advised a policy
// of exactly the routes it used. Try first creates the drafted policy and
// proposes it, the user's own rights unchanged; Apply grants that policy
// rather than making it twice, ending the trial of the same rights, and the
// gateway then admits what the user did and refuses the rest.
func TestConsolePolicySuggestion(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	userID, tok := e.programmatic(w.org, map[string]any{"level": "account", "account": w.production, "role": "editor",
		"name": "report-fetcher", "description": "Fetches the billing reports"})
	path := "/orgs/" + w.org + "/users/" + userID
	e.syncCache()
	e.sendN(tok, "GET", e.siteURL+"/api/reports/7?accountId="+w.production, 2, 200)
	e.flushRequests()
	policies := func() []string {
		t.Helper()
		var list struct{ Policies []struct{ ID, Name string } }
		e.must(e.call("", "GET", "/orgs/"+w.org+"/policies", nil), 200).json(t, &list)
		var ids []string
		for _, p := range list.Policies {
			ids = append(ids, p.ID)
		}
		return ids
	}
	before := policies()

	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openAccountUsers(w.production, "Production")
	s.do("opening the usage", chromedp.Click(chromedp.Search(`//tr[@data-user-id="`+userID+`"]//a[contains(@class, "usage-link")]`)))
	s.waitUsageLoaded("report-fetcher")
	draft := eval[string](s, "reading the drafted policy", `(document.querySelector('#advice-suggestions article[data-kind="policy"] pre.policy-draft') || {}).textContent || ""`)
	if !strings.Contains(draft, `"/api/reports", "/api/reports/**"`) || !strings.Contains(draft, `"GET"`) {
		t.Fatalf("the policy suggestion shows the draft %q, want GET on /api/reports and below", draft)
	}

	// Try first: the drafted policy is created and proposed; the user keeps
	// its role.
	s.do("trying the policy first", chromedp.Click(chromedp.Search(`//article[@data-kind="policy"]//button[contains(@class, "try-suggestion")]`)))
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.do("confirming", chromedp.Click(chromedp.ID("confirm-yes")))
	s.waitFor("the trial shows", `!document.getElementById("trial-panel").hidden &&
		document.getElementById("view-usage").getAttribute("aria-busy") === "false"`)
	var u struct {
		Role     string
		Policies []string
		Proposed *struct {
			Role     string
			Policies []string
		}
	}
	e.must(e.call("", "GET", path, nil), 200).json(t, &u)
	tried := slices.DeleteFunc(policies(), func(id string) bool { return slices.Contains(before, id) })
	if u.Role != "editor" || u.Proposed == nil || u.Proposed.Role != "policy" || len(tried) != 1 || !slices.Equal(u.Proposed.Policies, tried) {
		t.Fatalf("after Try first the user is %+v and the new policies %v, want an editor trying the one new policy", u, tried)
	}
	e.syncCache()
	e.sendN(tok, "POST", e.siteURL+"/api/reports?accountId="+w.production, 1, 200) // still its own rights

	// Apply: the policy tried is granted, not made twice; the gateway
	// follows.
	s.do("applying the policy", chromedp.Click(chromedp.Search(`//article[@data-kind="policy"]//button[contains(@class, "apply-suggestion")]`)))
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	if msg := s.text("confirm-message"); !strings.Contains(msg, tried[0]) || !strings.Contains(msg, "made from this draft before") ||
		!strings.Contains(msg, "ends the trial") {
		t.Errorf("the confirmation reads %q, want the policy tried named", msg)
	}
	s.do("confirming", chromedp.Click(chromedp.ID("confirm-yes")))
	s.waitFor("the change is applied", `document.getElementById("status").textContent.includes("applied") &&
		document.getElementById("view-usage").getAttribute("aria-busy") === "false"`)
	u.Proposed = nil
	e.must(e.call("", "GET", path, nil), 200).json(t, &u)
	made := slices.DeleteFunc(policies(), func(id string) bool { return slices.Contains(before, id) })
	if u.Role != "policy" || u.Proposed != nil || !slices.Equal(u.Policies, tried) || !slices.Equal(made, tried) {
		t.Fatalf("after Apply the user is %+v and the new policies %v, want role policy with the one tried, %v", u, made, tried)
	}
	e.syncCache()
	e.sendN(tok, "GET", e.siteURL+"/api/reports/9?accountId="+w.production, 1, 200)
	gatewayRefuses(t, e, tok, "POST", "/api/reports?accountId="+w.production, 403, "role_forbidden")
}
