package admin_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokengate/tokengate/internal/webhooktest"
)

// TestConsoleWebhooks: an organization admin adds a webhook in the
// console, sees its signing secret once (gone when the dialog closes, and
// never in a listing), the receiver verifies deliveries signed with it,
// and the console shows the recent deliveries; disabling and deleting
// work; an account admin is not offered webhooks.
func TestConsoleWebhooks(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	rcv := webhooktest.Start(t)
	s := openConsole(t, e)
	s.signIn(w.admin)

	s.click("Webhooks")
	s.waitFor("the webhooks page", `!document.getElementById("view-webhooks").hidden && document.getElementById("webhooks-table").getAttribute("aria-busy") !== "true"`)
	if !eval[bool](s, "the empty list", `!document.getElementById("webhooks-empty").hidden`) {
		t.Error("no empty-list notice")
	}
	s.checkAccessible("webhooks")

	// A URL the gateway refuses is reported on the field.
	s.click("Add webhook")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("webhook-url")))
	if id := s.activeID(); id != "webhook-url" {
		t.Errorf("focus in the new dialog is on %q, want the URL", id)
	}
	s.do("typing a URL", chromedp.SendKeys(chromedp.ID("webhook-url"), "ftp://example.com/"))
	s.click("Create webhook")
	s.waitFor("the refusal", `document.getElementById("webhook-error").textContent.includes("url")`)
	if got := eval[string](s, "reading the field", `document.getElementById("webhook-url").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the URL field is not marked invalid: %q", got)
	}

	// A real one, for two kinds of events.
	s.do("typing the URL", chromedp.SetValue(chromedp.ID("webhook-url"), rcv.URL),
		chromedp.SendKeys(chromedp.ID("webhook-description"), "Security team"),
		chromedp.Click(chromedp.ID("webhook-events-some")))
	s.waitFor("the events are offered", `!document.getElementById("webhook-events-list").hidden`)
	s.do("choosing events", chromedp.Click(chromedp.ID("webhook-event-account-create")),
		chromedp.Click(chromedp.ID("webhook-event-token-revoke")))
	s.checkAccessible("add webhook")
	s.screenshot("add-webhook")
	s.click("Create webhook")
	s.waitFor("the secret is shown", `document.getElementById("secret-dialog").open && document.getElementById("new-secret").value.startsWith("whsec_")`)
	secret := eval[string](s, "reading the secret", `document.getElementById("new-secret").value`)
	e.mu.Lock()
	e.secrets = append(e.secrets, secret) // must never reach the log
	e.mu.Unlock()
	if !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(secret) {
		t.Fatalf("secret %q", secret)
	}
	if !strings.Contains(s.text("secret-warning"), "shown only this once") {
		t.Errorf("the secret dialog does not warn that it is shown once: %q", s.text("secret-warning"))
	}
	if id := s.activeID(); id != "new-secret" {
		t.Errorf("focus in the secret dialog is on %q", id)
	}
	rcv.SetSecret(secret)
	s.waitFor("the webhook is listed", `document.querySelectorAll("#webhooks-body tr").length === 1`)
	s.screenshot("webhook-secret-shown-once")
	s.click("Done, I stored the secret")
	s.waitFor("the secret dialog closes", `!document.getElementById("secret-dialog").open`)
	s.checkSecretGone(secret)
	if id := s.activeID(); id != "add-webhook" {
		t.Errorf("focus after the secret dialog is on %q, want the Add button", id)
	}
	row := eval[[]string](s, "reading the row", `[...document.querySelector("#webhooks-body tr").cells].map(c => c.textContent)`)
	if !strings.Contains(row[0], rcv.URL) || !strings.Contains(row[0], "Security team") || row[1] != "account.create, token.revoke" || row[2] != "Active" {
		t.Errorf("the webhook's row reads %q", row)
	}
	hookID := eval[string](s, "reading the id", `document.querySelector("#webhooks-body tr").dataset.webhookId`)
	if r := e.call(w.admin, "GET", "/orgs/"+w.org+"/webhooks", nil); strings.Contains(string(r.body), secret[6:]) {
		t.Fatal("the listing shows the secret")
	}

	// Events arrive, signed with that secret; the console lists them.
	e.must(e.call(w.admin, "POST", "/orgs/"+w.org+"/accounts", map[string]string{"name": "Sandbox"}), 201)
	webhooktest.WaitFor(t, "the account's creation arrived", 20*time.Second, func() bool { return len(rcv.Arrivals()) == 1 })
	if a := rcv.Arrivals()[0]; a.Payload.Type != "account.create" {
		t.Fatalf("delivered %+v", a.Payload)
	}
	s.clickIn(`//tr[@data-webhook-id="`+hookID+`"]`, "Deliveries")
	s.waitFor("a delivery is listed", `document.getElementById("deliveries-dialog").open &&
		document.querySelector('#deliveries-body tr[data-status="delivered"]') !== null`)
	s.checkAccessible("deliveries")
	s.screenshot("deliveries")
	if got := s.text("deliveries-body"); !strings.Contains(got, "account.create") || !strings.Contains(got, "Delivered") || !strings.Contains(got, "HTTP 204") {
		t.Errorf("the deliveries read %q", got)
	}
	s.do("closing", chromedp.Click(chromedp.ID("deliveries-close")))
	s.waitFor("the deliveries dialog closes", `!document.getElementById("deliveries-dialog").open`)

	// Disable, then delete.
	s.clickIn(`//tr[@data-webhook-id="`+hookID+`"]`, "Disable")
	s.waitFor("the webhook is disabled", `document.querySelector("#webhooks-body tr") && document.querySelector("#webhooks-body tr").cells[2].textContent === "disabled"`)
	s.clickIn(`//tr[@data-webhook-id="`+hookID+`"]`, "Delete")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.click("Delete webhook")
	s.waitFor("the webhook is gone", `document.querySelectorAll("#webhooks-body tr").length === 0 && !document.getElementById("webhooks-empty").hidden`)
	e.must(e.call("", "GET", "/orgs/"+w.org+"/webhooks/"+hookID, nil), 404)

	// An account admin is not offered webhooks, and the API refuses it.
	s.click("Sign out")
	s.signIn(w.stagingAdmin)
	if !eval[bool](s, "the nav", `document.getElementById("nav-webhooks-item").hidden`) {
		t.Error("an account admin is offered Webhooks")
	}
	s.do("going to webhooks", chromedp.Navigate(s.url+"/#/webhooks"))
	s.waitFor("sent back to settings", `!document.getElementById("view-settings").hidden`)
}
