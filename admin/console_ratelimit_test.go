package admin_test

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleRateLimit: an admin sets a programmatic user's rate limit
// when adding it, sees it in the list, changes it and removes it from the
// user's row; refusals name the field and put the focus on it; each change
// is the admin's in the audit trail.
func TestConsoleRateLimit(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	storedLimit := func(id string) map[string]any {
		t.Helper()
		return rateLimitOf(t, e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+id, nil), 200))
	}

	// Added with a limit; a window the API refuses is reported on its field.
	secret := s.addUser(func() {
		s.do("filling in the form", chromedp.SendKeys(chromedp.ID("add-name"), "metered-bot"),
			chromedp.Click(chromedp.ID("add-account-"+w.production)))
		if got := eval[string](s, "reading the default window", `document.getElementById("add-rate-window").value`); got != "1m" {
			t.Errorf("the window starts as %q, want 1m", got)
		}
		s.setField("add-rate-requests", "100")
		s.setField("add-rate-window", "1d")
		s.click("Create")
		s.waitFor("the window is refused", `document.getElementById("add-error").textContent.includes("rate_limit.window")`)
		if id := s.activeID(); id != "add-rate-window" {
			t.Errorf("focus after a refused window is on %q, want the window", id)
		}
		if got := eval[string](s, "reading the field", `document.getElementById("add-rate-window").getAttribute("aria-invalid")`); got != "true" {
			t.Errorf("the window is not marked invalid: %q", got)
		}
		s.setField("add-rate-window", "120s")
		s.checkAccessible("add programmatic user with a rate limit")
		s.screenshot("add-rate-limit")
	})
	s.closeToken(secret)
	id := s.userIDOf("metered-bot")
	if got := storedLimit(id); got["requests"] != 100.0 || got["window"] != "2m" {
		t.Fatalf("created with rate_limit %v, want 100 per 2m", got)
	}
	row := `//tr[@data-user-id="` + id + `"]`
	if cells := s.rowCells("metered-bot"); !strings.Contains(cells[0], "Rate limit: 100 requests per 2 minutes") {
		t.Errorf("the row reads %q", cells[0])
	}
	if cells := s.rowCells("terraform"); strings.Contains(cells[0], "Rate limit") {
		t.Errorf("a user without a limit shows one: %q", cells[0])
	}

	// Changed from its row: the dialog shows the limit, saves the new one.
	s.clickIn(row, "Rate limit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("rate-requests")))
	if id := s.activeID(); id != "rate-requests" {
		t.Errorf("focus in the rate limit dialog is on %q, want Requests", id)
	}
	shown := eval[[]string](s, "reading the dialog", `["rate-requests", "rate-window"].map(id => document.getElementById(id).value)`)
	if shown[0] != "100" || shown[1] != "2m" || !strings.Contains(s.text("rate-context"), "100 requests per 2 minutes") {
		t.Errorf("the dialog shows %q, %q", shown, s.text("rate-context"))
	}
	s.checkAccessible("rate limit")
	// A number that is none is refused in the page, sending nothing.
	s.setField("rate-requests", "many")
	s.click("Save rate limit")
	s.waitFor("the refusal", `document.getElementById("rate-error").textContent.includes("whole number")`)
	if id := s.activeID(); id != "rate-requests" {
		t.Errorf("focus after a refused number is on %q", id)
	}
	s.setField("rate-requests", "5")
	s.setField("rate-window", "1s")
	s.screenshot("rate-limit")
	s.click("Save rate limit")
	s.waitFor("the row shows the new limit", `document.querySelector('#users-body tr[data-user-id="`+id+`"] .rate-limit') &&
		document.querySelector('#users-body tr[data-user-id="`+id+`"] .rate-limit').textContent === "Rate limit: 5 requests per second" &&
		!document.getElementById("rate-dialog").open`)
	if got := storedLimit(id); got["requests"] != 5.0 || got["window"] != "1s" {
		t.Fatalf("changed to rate_limit %v, want 5 per 1s", got)
	}
	if !eval[bool](s, "reading the focus", `document.activeElement.classList.contains("rate-button") &&
		document.activeElement.closest("tr").dataset.userId === `+jsString(id)) {
		t.Errorf("after saving, focus is on %q, want the row's Rate limit button", s.activeID())
	}
	if got := s.text("status"); !strings.Contains(got, "5 requests per second") {
		t.Errorf("the status says %q", got)
	}

	// Removed: Requests left empty.
	s.clickIn(row, "Rate limit")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("rate-requests")))
	s.setField("rate-requests", "")
	s.click("Save rate limit")
	s.waitFor("the row shows no limit", `!document.getElementById("rate-dialog").open &&
		document.querySelector('#users-body tr[data-user-id="`+id+`"]') &&
		!document.querySelector('#users-body tr[data-user-id="`+id+`"] .rate-limit')`)
	if got := storedLimit(id); got != nil {
		t.Fatalf("removed, yet the API shows rate_limit %v", got)
	}
	if got := s.text("status"); !strings.Contains(got, "no rate limit") {
		t.Errorf("the status says %q", got)
	}

	// Both changes are Ana's in the audit trail.
	var audit struct {
		Events []struct {
			Action, Target string
			Actor          struct{ ID string }
		}
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?limit=10", nil), 200).json(t, &audit)
	updates := 0
	for _, ev := range audit.Events {
		if ev.Action == "user.update" && ev.Target == id && ev.Actor.ID == w.adminID {
			updates++
		}
	}
	if updates != 2 {
		t.Errorf("%d user.update events by the admin, want 2: %+v", updates, audit.Events)
	}
}

// TestConsoleRateLimitMarkup: without a browser, the console's page has
// labelled rate limit fields in the add dialog and in a dialog of its own,
// and its script sends and shows rate_limit.
func TestConsoleRateLimitMarkup(t *testing.T) {
	page, err := os.ReadFile("console/index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("console/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"add-rate-requests", "add-rate-window", "rate-requests", "rate-window"} {
		if !strings.Contains(string(page), `<input id="`+id+`"`) || !strings.Contains(string(page), `<label for="`+id+`">`) {
			t.Errorf("index.html has no labelled field %s", id)
		}
		if !strings.Contains(string(script), `$("`+id+`")`) {
			t.Errorf("app.js never reads %s", id)
		}
	}
	if !strings.Contains(string(page), `<dialog id="rate-dialog" aria-labelledby="rate-title">`) {
		t.Error("index.html has no rate limit dialog")
	}
	for _, use := range []string{"body.rate_limit = rate.limit", "{ rate_limit: rate.limit }", "u.rate_limit ?", `"Rate limit: " + rateLabel(`} {
		if !strings.Contains(string(script), use) {
			t.Errorf("app.js lacks %q", use)
		}
	}
}
