package admin_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleEditUser: an admin edits a programmatic user from its row —
// name, description, role, accounts, allowed networks, rate limit — and
// disables and enables it; only the fields changed are sent, the gateway
// follows each change at once, and a refusal keeps the dialog open on the
// field at fault.
func TestConsoleEditUser(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	row := `//tr[@data-user-id="` + w.exporterID + `"]`
	path := "/api/metrics?accountId=" + w.staging
	gatewayRefuses(t, e, w.exporter, "GET", path, 403, "account_forbidden")
	as := func(name, account, role string) upstreamIdentity {
		return upstreamIdentity{UserID: w.exporterID, UserType: "programmatic", UserName: name, Org: w.org, Account: account, Role: role}
	}
	stored := func() map[string]any {
		t.Helper()
		var u map[string]any
		e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+w.exporterID, nil), 200).json(t, &u)
		return u
	}

	// The dialog opens filled in with the user as stored.
	s.clickIn(row, "Edit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("add-name")))
	if id := s.activeID(); id != "add-name" {
		t.Errorf("focus in the edit dialog is on %q, want Name", id)
	}
	shown := eval[[]any](s, "reading the form", `[document.getElementById("add-title").textContent,
		document.getElementById("add-name").value, document.getElementById("add-description").value,
		document.getElementById("add-role").value,
		document.getElementById("add-account-`+w.production+`").checked, document.getElementById("add-account-`+w.staging+`").checked,
		document.getElementById("add-disabled").checked, document.getElementById("add-submit").textContent]`)
	if shown[0] != "Edit metrics-exporter" || shown[1] != "metrics-exporter" || shown[2] != "Scrapes usage for billing" ||
		shown[3] != "viewer" || shown[4] != true || shown[5] != false || shown[6] != false || shown[7] != "Save changes" {
		t.Fatalf("the edit dialog shows %v", shown)
	}
	s.checkAccessible("edit programmatic user")

	// A network the API refuses: the dialog stays, the field is marked.
	s.setField("add-cidrs", "10.0.0.0/33")
	s.click("Save changes")
	s.waitFor("the network is refused", `document.getElementById("add-error").textContent.includes("allowed_cidrs")`)
	if id := s.activeID(); id != "add-cidrs" || !eval[bool](s, "reading the dialog", `document.getElementById("add-dialog").open`) {
		t.Errorf("after a refused network: focus on %q, dialog open %v", id, eval[bool](s, "", `document.getElementById("add-dialog").open`))
	}

	// Every field changed at once.
	s.setField("add-name", "billing-exporter")
	s.setField("add-description", "Scrapes usage for billing, both accounts")
	s.choose("add-role", "editor")
	s.do("adding staging", chromedp.Click(chromedp.ID("add-account-"+w.staging)))
	s.setField("add-cidrs", "127.0.0.0/8, ::1/128")
	s.setField("add-rate-requests", "1000")
	s.setField("add-rate-window", "1h")
	s.screenshot("edit-user")
	s.click("Save changes")
	s.waitFor("the row shows the change", `!document.getElementById("add-dialog").open &&
		document.querySelector('#users-body tr[data-user-id="`+w.exporterID+`"] .user-name') &&
		document.querySelector('#users-body tr[data-user-id="`+w.exporterID+`"] .user-name').textContent === "billing-exporter"`)
	u := stored()
	if u["name"] != "billing-exporter" || u["description"] != "Scrapes usage for billing, both accounts" || u["role"] != "editor" ||
		len(u["accounts"].([]any)) != 2 || len(u["allowed_cidrs"].([]any)) != 2 || rateLimitOf(t, e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+w.exporterID, nil), 200))["window"] != "1h" {
		t.Fatalf("stored after the edit: %v", u)
	}
	if !eval[bool](s, "reading the focus", `document.activeElement.classList.contains("edit-button") &&
		document.activeElement.closest("tr").dataset.userId === `+jsString(w.exporterID)) {
		t.Errorf("after saving, focus is on %q, want the row's Edit button", s.activeID())
	}
	gatewayOK(t, e, w.exporter, "POST", path, as("billing-exporter", w.staging, "editor"))

	// Only what changed is sent: a name alone is a change an admin
	// without the user's other grants may make.
	s.clickIn(row, "Edit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("add-name")))
	s.setField("add-name", "exporter")
	eval[any](s, "watching the request", `(() => {
		window.sentBodies = [];
		const orig = window.fetch;
		window.fetch = (url, init) => { if (init && init.method === "PATCH") window.sentBodies.push(init.body); return orig(url, init); };
	})()`)
	// A save ends with the row drawn again and focus on its Edit button:
	// the next click must find the new row, not the one replaced.
	settled := `document.activeElement.classList.contains("edit-button") && document.activeElement.isConnected &&
		document.activeElement.closest("tr").dataset.userId === ` + jsString(w.exporterID)
	s.click("Save changes")
	s.waitFor("the request is sent", `window.sentBodies.length === 1 && !document.getElementById("add-dialog").open`)
	s.waitFor("the row is drawn again", settled)
	if sent := eval[string](s, "reading the request", `window.sentBodies[0]`); sent != `{"name":"exporter"}` {
		t.Errorf("a name change sent %s", sent)
	}

	// Disabled: its tokens are refused at once; enabled: they work again.
	for _, disable := range []bool{true, false} {
		s.clickIn(row, "Edit")
		s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("add-disabled")))
		s.do("ticking Disabled", chromedp.Click(chromedp.ID("add-disabled")))
		s.click("Save changes")
		want := "enabled"
		if disable {
			want = "disabled"
		}
		s.waitFor("the status says "+want, `document.getElementById("status").textContent.includes("and `+want+`")`)
		s.waitFor("the row is drawn again", settled)
		if disable {
			s.waitFor("the row is marked", `document.querySelector('#users-body tr[data-user-id="`+w.exporterID+`"] .badge')`)
			gatewayRefuses(t, e, w.exporter, "GET", path, 401, "invalid_token")
		} else {
			gatewayOK(t, e, w.exporter, "GET", path, as("exporter", w.staging, "editor"))
		}
	}

	// Nothing changed: nothing sent.
	s.clickIn(row, "Edit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("add-name")))
	s.click("Save changes")
	s.waitFor("the status says nothing changed", `document.getElementById("status").textContent.includes("Nothing to change")`)
	if n := eval[float64](s, "counting requests", `window.sentBodies.length`); n != 3 {
		t.Errorf("%v PATCH requests, want 3 (the name, disabling, enabling)", n)
	}
}

// TestConsoleAddTokenWithExpiry: from a user's tokens an admin adds a
// second token with a name and an expiry, and rotates one choosing the new
// token's expiry; the API stores what was chosen and both tokens work.
func TestConsoleAddTokenWithExpiry(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	s.clickIn(`//tr[@data-user-id="`+w.exporterID+`"]`, "Tokens")
	s.waitFor("the token is listed", `document.querySelectorAll("#tokens-body tr").length === 1`)
	path := "/api/metrics?accountId=" + w.production

	s.click("Add token")
	s.do("the form opens", chromedp.WaitVisible(chromedp.ID("new-token-name")))
	if id := s.activeID(); id != "new-token-name" {
		t.Errorf("focus in the new token form is on %q", id)
	}
	s.do("naming it", chromedp.SendKeys(chromedp.ID("new-token-name"), "ci-runner-2"))
	s.choose("new-token-expiry", "720h")
	s.checkAccessible("add token")
	s.screenshot("add-token")
	s.click("Create token")
	second := s.readToken()
	if got := s.text("token-context"); !strings.Contains(got, "ci-runner-2") || !strings.Contains(got, "in 30 days") {
		t.Errorf("the new token's dialog says %q", got)
	}
	s.closeToken(second)
	s.waitFor("both tokens are listed", `document.querySelectorAll("#tokens-body tr").length === 2`)
	as := upstreamIdentity{UserID: w.exporterID, UserType: "programmatic", UserName: "metrics-exporter", Org: w.org,
		Account: w.production, Role: "viewer"}
	for _, tok := range []string{w.exporter, second} {
		gatewayOK(t, e, tok, "GET", path, as)
	}

	var listed struct {
		Tokens []struct {
			ID, Name  string
			ExpiresAt *time.Time `json:"expires_at"`
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+w.exporterID+"/tokens", nil), 200).json(t, &listed)
	i := slices.IndexFunc(listed.Tokens, func(tk struct {
		ID, Name  string
		ExpiresAt *time.Time `json:"expires_at"`
	}) bool {
		return tk.Name == "ci-runner-2"
	})
	if i < 0 || listed.Tokens[i].ExpiresAt == nil || time.Until(*listed.Tokens[i].ExpiresAt) < 29*24*time.Hour ||
		time.Until(*listed.Tokens[i].ExpiresAt) > 31*24*time.Hour {
		t.Fatalf("tokens after adding one for 30 days: %+v", listed.Tokens)
	}

	// Rotating it, the new token expires in a year.
	s.clickIn(`//tr[@data-token-id="`+listed.Tokens[i].ID+`"]`, "Rotate")
	s.do("the rotation form opens", chromedp.WaitVisible(chromedp.ID("rotate-expiry")))
	s.choose("rotate-expiry", "8760h")
	s.click("Rotate token")
	third := s.readToken()
	s.closeToken(third)
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+w.exporterID+"/tokens", nil), 200).json(t, &listed)
	found := false
	for _, tk := range listed.Tokens {
		if tk.Name == "ci-runner-2, rotated" {
			found = tk.ExpiresAt != nil && time.Until(*tk.ExpiresAt) > 364*24*time.Hour
		}
	}
	if !found {
		t.Fatalf("the rotated token does not expire in a year: %+v", listed.Tokens)
	}
	gatewayOK(t, e, third, "GET", path, as)
}

// TestConsoleFindUsers: the list finds users by name, ID or description,
// filters by role and state, sorts by name, creation and last use, says
// how many it shows, and shows who created each user and when.
func TestConsoleFindUsers(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	e.must(e.call("", "PATCH", "/orgs/"+w.org+"/users/"+w.exporterID, map[string]any{"disabled": true}), 200)
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	shown := func() []string {
		t.Helper()
		return eval[[]string](s, "reading the rows shown", `[...document.querySelectorAll("#users-body tr")].filter(r => !r.hidden).map(r => r.querySelector(".user-name").textContent)`)
	}
	if got := shown(); !slices.Equal(got, []string{"metrics-exporter", "terraform"}) {
		t.Fatalf("sorted by name: %v", got)
	}
	if got := s.text("users-count"); got != "2 users." {
		t.Errorf("the count says %q", got)
	}
	if cells := s.rowCells("terraform"); !strings.Contains(cells[4], "Operator") ||
		!eval[bool](s, "reading the created time", userRow("terraform")+`.cells[4].querySelector("time") !== null`) {
		t.Errorf("the created column reads %q", cells[4])
	}
	s.checkAccessible("find users")

	s.setField("users-search", "billing")
	s.waitFor("the search applies", `document.getElementById("users-count").textContent === "1 of 2 users match."`)
	if got := shown(); !slices.Equal(got, []string{"metrics-exporter"}) {
		t.Errorf("found by description: %v", got)
	}
	s.setField("users-search", w.machineAdminID)
	s.waitFor("the search by ID applies", `document.getElementById("users-count").textContent === "1 of 2 users match."`)
	if got := shown(); !slices.Equal(got, []string{"terraform"}) {
		t.Errorf("found by ID: %v", got)
	}
	eval[string](s, "clearing the search", `document.getElementById("users-search").value = ""`)
	s.choose("users-state", "disabled")
	s.waitFor("the state filter applies", `document.getElementById("users-count").textContent === "1 of 2 users match."`)
	if got := shown(); !slices.Equal(got, []string{"metrics-exporter"}) {
		t.Errorf("disabled users: %v", got)
	}
	s.choose("users-state", "")
	s.choose("users-role", "admin")
	s.waitFor("the role filter applies", `document.getElementById("users-count").textContent === "1 of 2 users match."`)
	if got := shown(); !slices.Equal(got, []string{"terraform"}) {
		t.Errorf("admins: %v", got)
	}
	s.choose("users-role", "")
	s.choose("users-sort", "newest")
	s.waitFor("the order applies", `document.getElementById("users-count").textContent === "2 users."`)
	if got := shown(); !slices.Equal(got, []string{"metrics-exporter", "terraform"}) {
		t.Errorf("newest first: %v", got) // the exporter was created after terraform
	}
	s.choose("users-sort", "oldest")
	s.waitFor("the order applies", `[...document.querySelectorAll("#users-body tr")][0].querySelector(".user-name").textContent === "terraform"`)
	s.screenshot("find-users")
}

// TestConsoleAuditFilters: the audit log narrows to who, what and when,
// shows names beside the IDs of what changed, and exports the events the
// filters match as JSON lines, as the API gives them.
func TestConsoleAuditFilters(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	// Ana's own change, through the API with her token.
	e.must(e.call(w.admin, "PATCH", "/orgs/"+w.org+"/users/"+w.exporterID, map[string]any{"description": "by Ana"}), 200)
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.click("Audit log")
	loaded := `document.querySelectorAll("#audit-body tr").length > 0 && document.getElementById("audit-table").getAttribute("aria-busy") !== "true"`
	s.waitFor("events are listed", loaded)
	s.checkAccessible("audit filters")

	// Names beside IDs: the user created, the token and its user.
	cells := eval[[]string](s, "reading the targets", `[...document.querySelectorAll("#audit-body tr")].map(r => r.cells[3].textContent)`)
	if !slices.ContainsFunc(cells, func(c string) bool { return strings.HasPrefix(c, "metrics-exporter"+w.exporterID) }) ||
		!slices.ContainsFunc(cells, func(c string) bool { return strings.HasPrefix(c, "Token of Ana Limatok-") }) ||
		!slices.ContainsFunc(cells, func(c string) bool { return strings.HasPrefix(c, "Production"+w.production) }) {
		t.Errorf("targets without names: %q", cells)
	}

	rows := func() [][]string {
		t.Helper()
		s.waitFor("the events are read", `document.getElementById("audit-table").getAttribute("aria-busy") !== "true"`)
		return eval[[][]string](s, "reading the events", `[...document.querySelectorAll("#audit-body tr")].map(r => [r.cells[1].textContent, r.cells[2].querySelector("code").textContent])`)
	}
	apply := func() {
		t.Helper()
		eval[any](s, "marking the table", `document.getElementById("audit-body").replaceChildren()`)
		s.click("Show events")
	}

	// Who: Ana's events only.
	s.choose("audit-actor", w.adminID)
	apply()
	s.waitFor("Ana's events", `document.querySelectorAll("#audit-body tr").length > 0 || !document.getElementById("audit-empty").hidden`)
	got := rows()
	if len(got) != 1 || got[0][0] != "Ana Lima (you)" || got[0][1] != "user.update" {
		t.Fatalf("Ana's events: %v", got)
	}

	// What: every user.create, whoever made it.
	s.choose("audit-actor", "")
	s.choose("audit-action", "user.create")
	apply()
	s.waitFor("the user.create events", `document.querySelectorAll("#audit-body tr").length > 0`)
	var want struct{ Events []map[string]any }
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?action=user.create&limit=1000", nil), 200).json(t, &want)
	if got := rows(); len(got) != min(len(want.Events), 25) || slices.ContainsFunc(got, func(r []string) bool { return r[1] != "user.create" }) {
		t.Fatalf("user.create events shown: %v, the API has %d", got, len(want.Events))
	}

	// Export: the same events, one JSON object a line.
	eval[any](s, "catching the export", `(() => {
		window.exported = null;
		const orig = URL.createObjectURL;
		URL.createObjectURL = (blob) => { blob.text().then(t => { window.exported = t; }); return orig(blob); };
	})()`)
	s.click("Export as JSON lines")
	s.waitFor("the export is done", `window.exported !== null && document.getElementById("audit-export-status").textContent.startsWith("Exported")`)
	lines := strings.Split(strings.TrimSuffix(eval[string](s, "reading the export", `window.exported`), "\n"), "\n")
	if len(lines) != len(want.Events) {
		t.Fatalf("exported %d lines, the API has %d events", len(lines), len(want.Events))
	}
	for i, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["id"] != want.Events[i]["id"] || ev["action"] != "user.create" {
			t.Fatalf("line %d: %s (%v)", i, line, err)
		}
	}
	if got := s.text("audit-export-status"); got != fmt.Sprintf("Exported %d events.", len(want.Events)) {
		t.Errorf("the export says %q", got)
	}

	// When: a day from now on holds nothing.
	eval[any](s, "setting From", `(() => {
		const d = new Date(Date.now() + 86400000);
		const pad = (n) => String(n).padStart(2, "0");
		document.getElementById("audit-since").value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
	})()`)
	apply()
	s.waitFor("nothing matches", `!document.getElementById("audit-empty").hidden && document.querySelectorAll("#audit-body tr").length === 0`)
	s.screenshot("audit-filters")
}

// TestConsolePolicies: an admin creates a policy with statements edited as
// rows — checked in the page before anything is sent, the field at fault
// marked and focused — edits and deletes policies; the gateway judges the
// policy's users by each version at once. An account-level admin changes
// its account's policies only.
func TestConsolePolicies(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.click("Policies")
	s.waitFor("the policies are listed", `document.querySelectorAll("#policies-body tr").length === 3`)
	if cells := eval[[]string](s, "reading a policy", `[...document.querySelector('#policies-body tr[data-policy-id="`+w.polDeploy+`"]').cells].map(c => c.textContent)`); !strings.Contains(cells[0], "Deploy production") ||
		!strings.Contains(cells[1], "Production") || !strings.Contains(cells[2], "GET, POST on /api/deployments/**") {
		t.Errorf("the policy's row reads %q", cells)
	}
	s.checkAccessible("policies")
	rowField := func(row int, kind string) string {
		t.Helper()
		return eval[string](s, "finding a statement's field", `document.querySelectorAll("#statements-body tr")[`+fmt.Sprint(row)+`].querySelector(".stmt-`+kind+`").id`)
	}

	// Add: three statements, one of them wrong at first.
	s.click("Add policy")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("policy-name")))
	s.do("naming it", chromedp.SendKeys(chromedp.ID("policy-name"), "Jobs runner"))
	s.choose("policy-account", w.production)
	s.setField(rowField(0, "paths"), "/api/**")
	s.click("Add statement")
	s.choose(rowField(1, "effect"), "deny")
	s.setField(rowField(1, "methods"), "*")
	s.setField(rowField(1, "paths"), "/api/admin/*")
	s.click("Add statement")
	s.setField(rowField(2, "methods"), "post, put")
	s.setField(rowField(2, "paths"), "api/jobs/*")
	s.checkAccessible("add policy")
	s.click("Create policy")
	s.waitFor("the path is refused in the page", `document.getElementById("policy-error").textContent.includes("Statement 3: the path \"api/jobs/*\" must start with /")`)
	if id := s.activeID(); id != rowField(2, "paths") {
		t.Errorf("focus after a refused path is on %q", id)
	}
	s.setField(rowField(2, "paths"), "/api/jobs/*")
	s.screenshot("add-policy")
	s.click("Create policy")
	s.waitFor("the policy is listed", `!document.getElementById("policy-dialog").open && [...document.querySelectorAll("#policies-body .policy-name")].some(n => n.textContent === "Jobs runner")`)
	var list struct {
		Policies []struct {
			ID, Name, Account string
			Statements        []struct {
				Effect         string
				Methods, Paths []string
			}
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/policies", nil), 200).json(t, &list)
	i := slices.IndexFunc(list.Policies, func(p struct {
		ID, Name, Account string
		Statements        []struct {
			Effect         string
			Methods, Paths []string
		}
	}) bool {
		return p.Name == "Jobs runner"
	})
	if i < 0 || list.Policies[i].Account != w.production || len(list.Policies[i].Statements) != 3 ||
		!slices.Equal(list.Policies[i].Statements[2].Methods, []string{"POST", "PUT"}) || list.Policies[i].Statements[1].Effect != "deny" {
		t.Fatalf("stored: %+v", list.Policies)
	}
	jobs := list.Policies[i].ID

	// Its user, judged by it.
	runnerID, runner := e.programmatic(w.org, map[string]any{"level": "account", "account": w.production, "role": "policy",
		"name": "runner", "policies": []string{jobs}})
	q := "?accountId=" + w.production
	as := upstreamIdentity{UserID: runnerID, UserType: "programmatic", UserName: "runner", Org: w.org, Account: w.production, Role: "policy"}
	gatewayOK(t, e, runner, "POST", "/api/jobs/7"+q, as)
	gatewayRefuses(t, e, runner, "GET", "/api/admin/keys"+q, 403, "role_forbidden")

	// Edit: the deny removed; the gateway allows what it denied.
	s.clickIn(`//tr[@data-policy-id="`+jobs+`"]`, "Edit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("policy-name")))
	if n := eval[int](s, "counting statements", `document.querySelectorAll("#statements-body tr").length`); n != 3 {
		t.Fatalf("the edit dialog shows %d statements", n)
	}
	if !eval[bool](s, "reading the scope", `document.getElementById("policy-account").disabled`) {
		t.Error("a policy's account can be changed in the dialog")
	}
	s.do("removing the deny", chromedp.Click(chromedp.Search(`//tbody[@id="statements-body"]/tr[2]//button`)))
	s.click("Save policy")
	s.waitFor("saved", `!document.getElementById("policy-dialog").open && document.getElementById("status").textContent.includes("saved")`)
	// The list is drawn again, focus on the policy's row: the next click
	// must find the new row.
	s.waitFor("the list is drawn again", `document.activeElement.closest("tr") && document.activeElement.closest("tr").dataset.policyId === `+jsString(jobs))
	gatewayOK(t, e, runner, "GET", "/api/admin/keys"+q, as)

	// A refusal only the API makes names the statement's field.
	s.clickIn(`//tr[@data-policy-id="`+jobs+`"]`, "Edit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("policy-name")))
	eval[any](s, "typing a control character", `document.querySelectorAll("#statements-body tr")[1].querySelector(".stmt-paths").value = "/api/jobs/\u0007"`)
	s.click("Save policy")
	s.waitFor("the API refuses", `document.getElementById("policy-error").textContent.includes("statements[1].paths")`)
	if id := s.activeID(); id != rowField(1, "paths") {
		t.Errorf("focus after the API's refusal is on %q", id)
	}
	s.do("cancelling", chromedp.Click(chromedp.ID("policy-cancel")))

	// Delete: refused while the runner holds it; the staging policy goes.
	s.clickIn(`//tr[@data-policy-id="`+jobs+`"]`, "Delete")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.click("Delete policy")
	s.waitFor("the refusal", `document.getElementById("alert").textContent.includes("Could not delete Jobs runner")`)
	s.clickIn(`//tr[@data-policy-id="`+w.polStaging+`"]`, "Delete")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.click("Delete policy")
	s.waitFor("the policy is gone", `!document.querySelector('#policies-body tr[data-policy-id="`+w.polStaging+`"]')`)
	e.must(e.call("", "GET", "/orgs/"+w.org+"/policies/"+w.polStaging, nil), 404)
}

// TestConsolePoliciesOfAnAccountAdmin: an account-level admin sees its
// account's policies and the organization-wide ones, and may change only
// its own account's.
func TestConsolePoliciesOfAnAccountAdmin(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.stagingAdmin)
	s.click("Policies")
	s.waitFor("the policies are listed", `document.querySelectorAll("#policies-body tr").length === 2`)
	buttons := eval[map[string]int](s, "counting the buttons", `Object.fromEntries([...document.querySelectorAll("#policies-body tr")].map(r => [r.dataset.policyId, r.querySelectorAll("button").length]))`)
	if buttons[w.polStaging] != 2 || buttons[w.polRead] != 0 {
		t.Fatalf("buttons per policy: %v (staging %s, organization-wide %s)", buttons, w.polStaging, w.polRead)
	}
	s.click("Add policy")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("policy-name")))
	if got := eval[[]string](s, "reading the scopes", `[...document.getElementById("policy-account").options].map(o => o.value)`); !slices.Equal(got, []string{w.staging}) {
		t.Errorf("an account admin may create policies for %v", got)
	}
	s.checkAccessible("add policy as an account admin")
}

// TestAPIReference: the OpenAPI document read in the browser, beside the
// console, requests tried with the signed-in admin's token or one typed
// in; every operation is listed, and the page runs under the console's
// Content-Security-Policy without a violation (checkConsole).
func TestAPIReference(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	var spec struct {
		Paths map[string]map[string]any
	}
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	operations := 0
	for _, item := range spec.Paths {
		for m := range item {
			if slices.Contains([]string{"get", "post", "put", "patch", "delete"}, m) {
				operations++
			}
		}
	}
	send := func(s *session, summary string, fields map[string]string, want string) string {
		t.Helper()
		details := `//details[summary[normalize-space()=` + jsXPathString(summary) + `]]`
		s.do("opening "+summary, chromedp.Click(chromedp.Search(details+`/summary`)))
		for name, value := range fields {
			input := details + `//input[@data-name=` + jsXPathString(name) + `]`
			if name == "body" {
				input = details + `//textarea`
			}
			s.do("filling "+name, chromedp.SetValue(chromedp.Search(input), value))
		}
		s.do("sending", chromedp.Click(chromedp.Search(details+`//button[starts-with(normalize-space(), "Send")]`)))
		answer := eval[string](s, "finding the answer", `document.evaluate(`+jsString(details+`//pre`)+`, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue.id`)
		s.waitFor("the answer", `document.getElementById(`+jsString(answer)+`).textContent.startsWith(`+jsString(want)+`)`)
		return s.text(answer)
	}

	// Beside the console: signed in, the admin's token is used.
	s := openConsole(t, e)
	s.signIn(w.admin)
	if href := eval[string](s, "reading the link", `document.getElementById("nav-api").href`); href != e.siteURL+"/admin/console/api-docs.html" {
		t.Errorf("the console links the reference at %s", href)
	}
	s.do("following the link", chromedp.Navigate(e.siteURL+"/admin/console/api-docs.html"))
	s.waitFor("the operations are listed", `document.querySelectorAll("details.operation").length === `+fmt.Sprint(operations))
	s.checkAccessible("API reference")
	got := send(s, "GET /orgs/{org}/users List users in ID order (account admins see their account's account-level users).", map[string]string{"org": w.org}, "200")
	if !strings.Contains(got, "metrics-exporter") {
		t.Errorf("the users listed: %s", got)
	}
	send(s, "POST /orgs/{org}/accounts Create an account (organization admins).", map[string]string{"org": w.org, "body": `{"name":"From the reference"}`}, "201")
	var audit struct {
		Events []struct {
			Action string
			Actor  struct{ ID string }
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?limit=1", nil), 200).json(t, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Action != "account.create" || audit.Events[0].Actor.ID != w.adminID {
		t.Errorf("the account was created by %+v, want Ana", audit.Events)
	}
	s.screenshot("api-reference")

	// A token typed in serves as well as the console's: signed out,
	// Vic's (a viewer's) is sent, and the API refuses it.
	eval[any](s, "signing out of the console", `sessionStorage.clear()`)
	s.do("typing Vic's token", chromedp.SendKeys(chromedp.ID("try-token"), w.viewer))
	if got := send(s, "GET /orgs/{org}/policies List policies (account admins see theirs and the organization-wide ones).", map[string]string{"org": w.org}, "403"); !strings.Contains(got, "forbidden") {
		t.Errorf("a viewer's try: %s", got)
	}
}
