package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The console in a real browser: headless Chromium (Debian's package,
// /usr/bin/chromium) driven with chromedp against a live gateway. Without
// Chromium the tests skip, except in CI (CI=true), where they fail.
//
// Screenshots of the key screens go to $TOKENGATE_ARTIFACTS (else a
// temporary directory); with TOKENGATE_UPDATE_SCREENSHOT=1 the README's
// docs/console.png is written again.

const (
	chromiumPath = "/usr/bin/chromium"
	stepTimeout  = 20 * time.Second
)

// session is one browser tab on the console.
type session struct {
	t     *testing.T
	e     *env
	tab   context.Context
	url   string // the console, as a user types it
	shots string

	mu       sync.Mutex
	problems []string    // errors the page logged or threw
	marks    chan string // console.info marks, to know the log has been read up to a point
}

// requireChromium skips the test where Chromium is missing, but fails it
// in CI, which installs it.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the console's browser tests need Chromium at %s (Debian's chromium package): %v", chromiumPath, err)
		}
		t.Skipf("skipping the console's browser tests: no Chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
}

// openConsole starts Chromium for the test and opens a tab on the console's
// sign-in page.
func openConsole(t *testing.T, e *env) *session {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The browser's life is the test's: started without a deadline, each
	// step below gets its own.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	s := &session{t: t, e: e, tab: tab, url: e.siteURL + "/admin/console", marks: make(chan string, 8)}
	s.shots = os.Getenv("TOKENGATE_ARTIFACTS")
	if s.shots == "" {
		s.shots = t.TempDir()
	} else if err := os.MkdirAll(s.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	go s.readConsole(chromedp.Console(tab))
	t.Cleanup(s.checkConsole) // before the browser goes

	origin := e.siteURL
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		ctx, cancel := context.WithTimeout(tab, stepTimeout)
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: origin})
		cancel()
		if err != nil {
			t.Logf("granting %s: %v (the console falls back to selecting the token)", name, err)
		}
	}
	s.do("opening the console", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.url),
		chromedp.WaitVisible(chromedp.ID("signin-token")))
	return s
}

// readConsole keeps what the page logs as an error or throws: a script
// error or a Content-Security-Policy violation fails the test. Refused
// requests (the network's own log lines) are expected and ignored.
func (s *session) readConsole(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
	for m, err := range messages {
		if err != nil {
			return
		}
		if m.Type == chromedp.ConsoleInfo && strings.HasPrefix(m.Text, "tokengate-mark-") {
			s.marks <- m.Text
			continue
		}
		if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
			s.mu.Lock()
			s.problems = append(s.problems, m.String())
			s.mu.Unlock()
		}
	}
}

// checkConsole fails the test if the page logged an error or threw.
func (s *session) checkConsole() {
	mark := fmt.Sprintf("tokengate-mark-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(s.tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`console.info(`+jsString(mark)+`)`)); err != nil {
		s.t.Errorf("marking the console log: %v", err)
		return
	}
	for {
		select {
		case got := <-s.marks:
			if got != mark {
				continue
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, p := range s.problems {
				s.t.Errorf("the page logged an error: %s", p)
			}
			return
		case <-ctx.Done():
			s.t.Errorf("the console log was not read up to the end")
			return
		}
	}
}

// do runs steps with a deadline; on failure it saves a screenshot and
// stops the test.
func (s *session) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.fail(what, err)
	}
}

func (s *session) fail(what string, err error) {
	s.t.Helper()
	s.screenshot("failure")
	s.t.Fatalf("%s: %v", what, err)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](s *session, what, expr string) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.tab, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		s.fail(what, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true.
func (s *session) waitFor(what, expr string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.tab, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		s.fail("waiting until "+what, err)
	}
}

// click clicks the visible button or link whose text is label.
func (s *session) click(label string) {
	s.t.Helper()
	q := jsXPathString(label)
	s.do("clicking "+label, chromedp.Click(chromedp.Search(`//button[normalize-space()=`+q+`] | //a[normalize-space()=`+q+`]`)))
}

// clickIn clicks the button starting with label in a table row. Rows are
// drawn again after every change, so the button is found and clicked in
// one step in the page (focused first, as a click focuses it), never by a
// node found in one step and clicked in the next, which a redraw between
// the two would have replaced.
func (s *session) clickIn(row, label string) {
	s.t.Helper()
	xpath := jsString(row + `//button[starts-with(normalize-space(), ` + jsXPathString(label) + `)]`)
	s.waitFor("a "+label+" button in "+row, `(() => {
		const b = document.evaluate(`+xpath+`, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		if (!b || b.disabled || !b.offsetParent) return false;
		b.focus();
		b.click();
		return true;
	})()`)
}

// choose picks an option of a select as a user does, firing its change
// event.
func (s *session) choose(id, value string) {
	s.t.Helper()
	got := eval[string](s, "choosing "+value+" in "+id, `(() => {
		const select = document.getElementById(`+jsString(id)+`);
		if (![...select.options].some(o => o.value === `+jsString(value)+`)) return "no such option";
		select.value = `+jsString(value)+`;
		select.dispatchEvent(new Event("change", {bubbles: true}));
		return select.value;
	})()`)
	if got != value {
		s.fail("choosing "+value+" in "+id, fmt.Errorf("%s", got))
	}
}

// setField empties a text field and types value into it, as a user does.
func (s *session) setField(id, value string) {
	s.t.Helper()
	eval[string](s, "clearing "+id, `document.getElementById(`+jsString(id)+`).value = ""`)
	if value != "" {
		s.do("typing in "+id, chromedp.SendKeys(chromedp.ID(id), value))
	}
}

func (s *session) text(id string) string {
	s.t.Helper()
	return eval[string](s, "reading "+id, `document.getElementById(`+jsString(id)+`).textContent`)
}

func (s *session) activeID() string {
	s.t.Helper()
	return eval[string](s, "reading the focus", `document.activeElement ? document.activeElement.id : ""`)
}

// screenshot saves the viewport as a PNG and returns it.
func (s *session) screenshot(name string) []byte {
	ctx, cancel := context.WithTimeout(s.tab, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	file := filepath.Join(s.shots, regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(s.t.Name(), "_")+"-"+name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		s.t.Errorf("saving a screenshot: %v", err)
	}
	return png
}

// checkAccessible checks what markup can tell: every field has a label,
// every control is a real one with a name, one h1, no duplicate IDs.
func (s *session) checkAccessible(screen string) {
	s.t.Helper()
	problems := eval[[]string](s, "checking "+screen, `(() => {
		const problems = [];
		for (const f of document.querySelectorAll("input, select, textarea")) {
			if (f.labels.length === 0 && !f.getAttribute("aria-label") && !f.getAttribute("aria-labelledby"))
				problems.push("a field without a label: " + (f.id || f.outerHTML.slice(0, 80)));
		}
		for (const b of document.querySelectorAll("button")) {
			if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("a button without a name: " + b.id);
		}
		for (const n of document.querySelectorAll("[onclick], [role=button], a:not([href])"))
			problems.push("not a real control: " + n.outerHTML.slice(0, 80));
		for (const d of document.querySelectorAll("dialog")) {
			const label = d.getAttribute("aria-labelledby");
			if (!label || !document.getElementById(label)) problems.push("a dialog without a title: " + d.id);
		}
		const ids = new Set();
		for (const n of document.querySelectorAll("[id]")) {
			if (ids.has(n.id)) problems.push("duplicate id " + n.id);
			ids.add(n.id);
		}
		const h1 = [...document.querySelectorAll("h1")].filter(h => h.offsetParent !== null);
		if (h1.length !== 1) problems.push(h1.length + " visible h1 headings");
		if (!document.querySelector("[role=alert]") || !document.querySelector("[aria-live]")) problems.push("no live regions");
		return problems;
	})()`)
	for _, p := range problems {
		s.t.Errorf("%s: %s", screen, p)
	}
}

// signIn signs in with a personal token and waits for the console.
func (s *session) signIn(tok string) {
	s.t.Helper()
	s.do("signing in", chromedp.SendKeys(chromedp.ID("signin-token"), tok))
	s.click("Sign in")
	s.waitFor("signed in", `!document.getElementById("main-nav").hidden && !document.getElementById("view-settings").hidden`)
}

// openProgrammaticUsers goes to Settings → tab → Programmatic Users, and
// waits for the list.
func (s *session) openProgrammaticUsers(tab, scopeText string) {
	s.t.Helper()
	s.click("Settings")
	s.click(tab)
	s.click("Programmatic Users")
	s.waitUsersLoaded(scopeText)
}

// openAccountUsers goes to Settings → Account, chooses an account and
// waits for the list of its Programmatic Users (the tab's one section,
// opened without a click).
func (s *session) openAccountUsers(account, name string) {
	s.t.Helper()
	s.click("Settings")
	s.click("Account")
	s.waitFor("the account tab is open", `!document.getElementById("account-picker").hidden`)
	s.choose("account-select", account)
	s.waitUsersLoaded("Account-level users of " + name)
}

// waitUsersLoaded waits until the list of the scope naming scopeText has
// loaded.
func (s *session) waitUsersLoaded(scopeText string) {
	s.t.Helper()
	s.waitFor("the list of "+scopeText+" has loaded", `(() => {
		const panel = document.getElementById("panel-users");
		return !panel.hidden && panel.getAttribute("aria-busy") !== "true" &&
			document.getElementById("users-scope").textContent.includes(`+jsString(scopeText)+`);
	})()`)
}

// userRow is a JavaScript expression for the list's row of a user.
func userRow(name string) string {
	return `[...document.querySelectorAll("#users-body tr")].find(r => r.querySelector(".user-name").textContent === ` + jsString(name) + `)`
}

// rowCells reads a user's row: name, type, role, accounts, created by,
// last used.
func (s *session) rowCells(name string) []string {
	s.t.Helper()
	return readRow[[]string](s, name, `[...r.cells].map(c => c.textContent)`)
}

// readRow evaluates expr on a user's row (as r) once it is listed, finding
// and reading the row in one step of the page: the list is drawn again
// after changes, and a redraw between two steps would leave nothing to read.
func readRow[T any](s *session, name, expr string) T {
	s.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		v := eval[*T](s, "reading the row of "+name, `(() => { const r = `+userRow(name)+`; return r ? (`+expr+`) : null; })()`)
		if v != nil {
			return *v
		}
		if time.Now().After(deadline) {
			s.fail("reading the row of "+name, errors.New("not listed"))
		}
		time.Sleep(25 * time.Millisecond) // polling the page, with a deadline
	}
}

// addUser fills in and submits the Add programmatic user dialog, and
// returns the token shown.
func (s *session) addUser(fill func()) string {
	s.t.Helper()
	s.click("Add programmatic user")
	s.do("the dialog opens", chromedp.WaitVisible(chromedp.ID("add-name")))
	if id := s.activeID(); id != "add-name" {
		s.t.Errorf("focus in the new dialog is on %q, want the Name field", id)
	}
	fill()
	s.click("Create")
	return s.readToken()
}

// readToken reads the token the "shown once" dialog holds.
func (s *session) readToken() string {
	s.t.Helper()
	s.waitFor("the token is shown", `document.getElementById("token-dialog").open && document.getElementById("new-token").value.startsWith("tgp_")`)
	secret := eval[string](s, "reading the token", `document.getElementById("new-token").value`)
	s.e.mu.Lock()
	s.e.secrets = append(s.e.secrets, secret) // must never reach the log
	s.e.mu.Unlock()
	if !strings.Contains(s.text("token-warning"), "shown only this once") {
		s.t.Errorf("the token dialog does not warn that it is shown once: %q", s.text("token-warning"))
	}
	if id := s.activeID(); id != "new-token" {
		s.t.Errorf("focus in the token dialog is on %q, want the token", id)
	}
	return secret
}

// closeToken closes the token dialog and checks the token left the page.
func (s *session) closeToken(secret string) {
	s.t.Helper()
	s.click("Done, I stored the token")
	s.waitFor("the token dialog closes", `!document.getElementById("token-dialog").open && !document.getElementById("token-dialog").contains(document.activeElement)`)
	s.checkSecretGone(secret)
}

// checkSecretGone checks that a token is nowhere in the page nor in the
// browser's storage.
func (s *session) checkSecretGone(secret string) {
	s.t.Helper()
	left := eval[[]string](s, "looking for the token", `(() => {
		const secret = `+jsString(secret)+`, found = [];
		if (document.documentElement.outerHTML.includes(secret)) found.push("markup");
		if (document.body.innerText.includes(secret)) found.push("text");
		for (const f of document.querySelectorAll("input, textarea")) if (f.value.includes(secret)) found.push("field " + f.id);
		for (const store of [sessionStorage, localStorage])
			for (let i = 0; i < store.length; i++) if (store.getItem(store.key(i)).includes(secret)) found.push("storage");
		if (location.href.includes(secret) || document.cookie.includes(secret)) found.push("URL or cookie");
		return found;
	})()`)
	if len(left) > 0 {
		s.t.Errorf("the token is still in the page after its dialog closed: %v", left)
	}
}

// userIDOf reads a user's ID from the list.
func (s *session) userIDOf(name string) string {
	s.t.Helper()
	s.waitFor(name+" is listed", userRow(name))
	return eval[string](s, "reading the ID of "+name, userRow(name)+`.dataset.userId`)
}

func jsString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jsXPathString quotes a string for XPath (labels here hold no quotes).
func jsXPathString(v string) string {
	return `"` + v + `"`
}

// gatewayOK sends a request through the gateway with tok and checks the
// identity the upstream receives.
func gatewayOK(t *testing.T, e *env, tok, method, path string, want upstreamIdentity) {
	t.Helper()
	r, got := e.through(tok, method, path)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s through the gateway: %d %s", method, path, r.status, r.body)
	}
	// The console never shows token IDs with secrets; any token of the
	// user will do, as long as one is named.
	if !strings.HasPrefix(got.TokenID, "tok-") {
		t.Fatalf("%s %s: the upstream got token ID %q", method, path, got.TokenID)
	}
	want.TokenID = got.TokenID
	if got != want {
		t.Fatalf("%s %s: the upstream got %+v, want %+v", method, path, got, want)
	}
}

// gatewayRefuses checks the gateway refuses tok with status and code.
func gatewayRefuses(t *testing.T, e *env, tok, method, path string, status int, code string) {
	t.Helper()
	if r, _ := e.through(tok, method, path); r.status != status || r.code != code {
		t.Fatalf("%s %s through the gateway: %d %s, want %d %s", method, path, r.status, r.body, status, code)
	}
}

// TestConsoleAddProgrammaticUser: the product's flow. A UI admin signs in
// with a personal token, adds a programmatic user at organization level
// (accounts chosen) and at account level (a policy-based role), copies each
// token from the dialog that shows it once, and the token works through the
// gateway with the right identity.
func TestConsoleAddProgrammaticUser(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.checkAccessible("sign-in")
	s.screenshot("sign-in")
	s.signIn(w.admin)
	if got := s.text("session-user"); !strings.Contains(got, "Ana Lima") {
		t.Errorf("the header shows %q", got)
	}

	// Settings → Organization → Programmatic Users.
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	s.rowCells("terraform")
	s.checkAccessible("programmatic users")

	// Add: Name, Description, Account Role, Accounts.
	secret := s.addUser(func() {
		s.do("filling in the form",
			chromedp.SendKeys(chromedp.ID("add-name"), "ci-deploy"),
			chromedp.SendKeys(chromedp.ID("add-description"), "Deploys from the CI pipeline"),
		)
		s.choose("add-role", "editor")
		s.do("choosing the accounts",
			chromedp.Click(chromedp.ID("add-account-"+w.production)),
			chromedp.Click(chromedp.ID("add-account-"+w.staging)),
		)
		s.checkAccessible("add programmatic user")
		s.screenshot("add-organization-user")
	})

	// Copy: to the clipboard, or (where the browser refuses) selected.
	s.click("Copy token")
	s.waitFor("the copy is confirmed", `document.getElementById("copy-status").textContent !== ""`)
	if status := s.text("copy-status"); status == "Copied to the clipboard." {
		if got := eval[string](s, "reading the clipboard", `navigator.clipboard.readText()`); got != secret {
			t.Errorf("the clipboard holds %q, want the token", got)
		}
	} else if selected := eval[string](s, "reading the selection", `(() => {
		const f = document.getElementById("new-token");
		return document.activeElement === f ? f.value.slice(f.selectionStart, f.selectionEnd) : "";
	})()`); selected != secret {
		t.Errorf("copying said %q but the token is not selected (%q)", status, selected)
	}

	// The list behind the dialog already shows the new user.
	s.waitFor("the new user is listed", userRow("ci-deploy"))
	png := s.screenshot("token-shown-once")
	if os.Getenv("TOKENGATE_UPDATE_SCREENSHOT") == "1" && png != nil {
		if err := os.MkdirAll(filepath.Join("..", "docs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ciDeploy := s.userIDOf("ci-deploy")

	// The token works through the gateway, as the new user.
	gatewayOK(t, e, secret, "GET", "/api/clusters?accountId="+w.staging, upstreamIdentity{UserID: ciDeploy,
		UserType: "programmatic", UserName: "ci-deploy", Org: w.org, Account: w.staging, Role: "editor"})
	gatewayOK(t, e, secret, "POST", "/api/clusters?accountId="+w.production, upstreamIdentity{UserID: ciDeploy,
		UserType: "programmatic", UserName: "ci-deploy", Org: w.org, Account: w.production, Role: "editor"})
	gatewayRefuses(t, e, secret, "GET", "/api/clusters?accountId="+w.globexMain, 403, "account_forbidden")

	// Closed, the token is gone for good: focus is back on the button, and
	// the user's tokens show only a hint.
	s.closeToken(secret)
	if id := s.activeID(); id != "add-user" {
		t.Errorf("focus after the token dialog is on %q, want the Add button", id)
	}
	s.clickIn(`//tr[@data-user-id="`+ciDeploy+`"]`, "Tokens")
	s.waitFor("the tokens are listed", `document.querySelectorAll("#tokens-body tr").length === 1`)
	hint := secret[:4] + "…" + secret[len(secret)-4:]
	if got := s.text("tokens-body"); !strings.Contains(got, hint) {
		t.Errorf("the tokens list %q lacks the hint %q", got, hint)
	}
	s.checkSecretGone(secret)
	s.click("Close")
	s.do("the tokens dialog closes", chromedp.WaitNotVisible(chromedp.ID("tokens-dialog")))

	// The list: type, role, accounts, created by, and last used once the
	// gateway's note of the use is written.
	e.flushUse()
	s.do("reloading", chromedp.Reload())
	s.waitUsersLoaded("Organization-level users of acme")
	cells := s.rowCells("ci-deploy")
	for i, want := range []string{"ci-deploy", "Programmatic", "Editor", "Production", "Ana Lima (you)"} {
		if !strings.Contains(cells[i], want) {
			t.Errorf("column %d of the new user's row is %q, want %q in it", i, cells[i], want)
		}
	}
	if !strings.Contains(cells[3], "Staging") {
		t.Errorf("accounts column %q lacks Staging", cells[3])
	}
	if !eval[bool](s, "reading last use", userRow("ci-deploy")+`.cells[5].querySelector("time") !== null`) {
		t.Errorf("last used is %q after the token was used", cells[5])
	}
	if cells := s.rowCells("terraform"); !strings.Contains(cells[4], "Operator") {
		t.Errorf("created by of a user the operator made: %q", cells[4])
	}

	// Account level: Settings → Account (Production) → Programmatic Users,
	// a policy-based role with its policies.
	s.openAccountUsers(w.production, "Production")
	secret = s.addUser(func() {
		s.do("filling in the form",
			chromedp.SendKeys(chromedp.ID("add-name"), "release-bot"),
			chromedp.SendKeys(chromedp.ID("add-description"), "Starts production deployments"),
		)
		if !eval[bool](s, "policies hidden", `document.getElementById("add-policies").hidden`) {
			t.Error("policies are offered before the policy-based role is chosen")
		}
		s.choose("add-role", "policy")
		s.do("policies are offered", chromedp.WaitVisible(chromedp.ID("add-policies")))
		offered := s.text("add-policies-list")
		for pol, want := range map[string]bool{w.polRead: true, w.polDeploy: true, w.polStaging: false} {
			if strings.Contains(offered, pol) != want {
				t.Errorf("policy %s offered: %v, want %v (%q)", pol, !want, want, offered)
			}
		}
		// No policy chosen: the console says what is missing.
		s.click("Create")
		s.waitFor("the error shows", `document.getElementById("add-error").textContent.includes("at least one policy")`)
		s.screenshot("add-account-user-error")
		s.do("choosing the policy", chromedp.Click(chromedp.ID("add-policy-"+w.polDeploy)))
		// Allowed networks: a mistyped one is refused, naming the field,
		// and the focus goes to it.
		s.do("typing a network", chromedp.SendKeys(chromedp.ID("add-cidrs"), "127.0.0.1/8"))
		s.click("Create")
		s.waitFor("the network is refused", `document.getElementById("add-error").textContent.includes("allowed_cidrs")`)
		if id := s.activeID(); id != "add-cidrs" {
			t.Errorf("focus after a refused network is on %q, want the Allowed networks field", id)
		}
		eval[string](s, "clearing the networks", `document.getElementById("add-cidrs").value = ""`)
		s.do("correcting the networks", chromedp.SendKeys(chromedp.ID("add-cidrs"), "127.0.0.0/8, ::1/128"))
		s.screenshot("add-account-user")
	})
	s.waitFor("the new user is listed", userRow("release-bot"))
	releaseBot := s.userIDOf("release-bot")
	var stored struct {
		AllowedCIDRs []string `json:"allowed_cidrs"`
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+releaseBot, nil), 200).json(t, &stored)
	if !slices.Equal(stored.AllowedCIDRs, []string{"127.0.0.0/8", "::1/128"}) {
		t.Errorf("release-bot was created with allowed_cidrs %q", stored.AllowedCIDRs)
	}
	gatewayOK(t, e, secret, "POST", "/api/deployments/7/restart", upstreamIdentity{UserID: releaseBot, UserType: "programmatic",
		UserName: "release-bot", Org: w.org, Account: w.production, Role: "policy"})
	gatewayRefuses(t, e, secret, "DELETE", "/api/deployments/7", 403, "role_forbidden")
	gatewayRefuses(t, e, secret, "GET", "/api/clusters?accountId="+w.staging, 403, "account_forbidden")
	s.closeToken(secret)
	cells = s.rowCells("release-bot")
	if !strings.Contains(cells[2], "Policy based: Deploy production") || !strings.Contains(cells[3], "Production") ||
		!strings.Contains(cells[0], "Allowed networks: 127.0.0.0/8, ::1/128") {
		t.Errorf("the account-level user's row: %q", cells)
	}
	// Outside its networks, its token is refused.
	e.must(e.call("", "PATCH", "/orgs/"+w.org+"/users/"+releaseBot, map[string]any{"allowed_cidrs": []string{"10.0.0.0/8"}}), 200)
	gatewayRefuses(t, e, secret, "POST", "/api/deployments/7/restart", 403, "ip_forbidden")
	s.screenshot("account-programmatic-users")
}

// TestConsoleRefusesProgrammaticUsers: a programmatic admin's token cannot
// sign in, and the console's API refuses it; so does a UI user who is not an
// admin, each with the API's message in view.
func TestConsoleRefusesProgrammaticUsers(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	for _, tc := range []struct {
		name, tok, message string
	}{
		{"programmatic admin", w.machineAdmin, "programmatic users have no access to the UI"},
		{"programmatic viewer", w.exporter, "programmatic users have no access to the UI"},
		{"UI viewer", w.viewer, "only admins may use the admin API"},
		{"malformed token", "tgu_0123456789012345678901234567890123456789abcdef", "the bearer token is malformed"},
	} {
		s.do("typing the "+tc.name+"'s token", chromedp.SendKeys(chromedp.ID("signin-token"), tc.tok))
		s.click("Sign in")
		s.waitFor("the refusal shows", `document.getElementById("alert").textContent.includes(`+jsString(tc.message)+`)`)
		s.screenshot("refused-" + strings.ReplaceAll(tc.name, " ", "-"))
		if !eval[bool](s, "still signed out", `document.getElementById("main-nav").hidden && !document.getElementById("view-signin").hidden`) {
			t.Errorf("%s: the console opened", tc.name)
		}
		if n := eval[int](s, "reading storage", `sessionStorage.length + localStorage.length`); n != 0 {
			t.Errorf("%s: the refused token was stored", tc.name)
		}
		if v := eval[string](s, "reading the field", `document.getElementById("signin-token").value`); v != "" {
			t.Errorf("%s: the refused token stays in the field", tc.name)
		}
		if id := s.activeID(); id != "signin-token" {
			t.Errorf("%s: focus after the refusal is on %q", tc.name, id)
		}
	}
	s.checkAccessible("refused sign-in")

	// The console's API refuses programmatic tokens outright; the API's own
	// mount serves them.
	for _, path := range []string{"api/whoami", "api/orgs/" + w.org + "/users", "api/orgs/" + w.org + "/audit", ""} {
		r := e.send(w.machineAdmin, "GET", e.siteURL+"/admin/console/"+path, nil, "")
		if r.status != 403 || r.code != "programmatic_ui_forbidden" {
			t.Errorf("console/%s with a programmatic token: %d %s", path, r.status, r.body)
		}
	}
	e.must(e.send(w.machineAdmin, "GET", e.siteURL+"/admin/orgs/"+w.org+"/users", nil, ""), 200)
}

// TestConsoleRotateAndRevoke: rotation with and without overlap, revocation
// and deletion from the console, each checked through the gateway.
func TestConsoleRotateAndRevoke(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	var listed struct{ Tokens []struct{ ID string } }
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users/"+w.exporterID+"/tokens", nil), 200).json(t, &listed)
	first, firstID := w.exporter, listed.Tokens[0].ID
	path := "/api/metrics?accountId=" + w.production

	s := openConsole(t, e)
	s.signIn(w.admin)
	s.openProgrammaticUsers("Organization", "Organization-level users of acme")
	row := `//tr[@data-user-id="` + w.exporterID + `"]`
	s.clickIn(row, "Tokens")
	s.waitFor("the token is listed", `document.querySelector('#tokens-body tr[data-token-id="`+firstID+`"]')`)
	s.checkAccessible("tokens")

	// Rotate with a one-hour overlap: both tokens work.
	s.clickIn(`//tr[@data-token-id="`+firstID+`"]`, "Rotate")
	s.do("the rotation form opens", chromedp.WaitVisible(chromedp.ID("rotate-overlap")))
	if id := s.activeID(); id != "rotate-overlap" {
		t.Errorf("focus in the rotation form is on %q", id)
	}
	s.choose("rotate-overlap", "1h")
	s.screenshot("rotate")
	s.click("Rotate token")
	second := s.readToken()
	if !strings.Contains(s.text("token-context"), "keeps working for 1 hour") {
		t.Errorf("the rotation does not say the old token keeps working: %q", s.text("token-context"))
	}
	s.closeToken(second)
	s.waitFor("both tokens are listed", `document.querySelectorAll("#tokens-body tr").length === 2`)
	for _, tok := range []string{first, second} {
		if r, _ := e.through(tok, "GET", path); r.status != 200 {
			t.Fatalf("within the overlap: %d %s", r.status, r.body)
		}
	}

	// Revoke the first: refused at once.
	s.clickIn(`//tr[@data-token-id="`+firstID+`"]`, "Revoke")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	if id := s.activeID(); id != "confirm-no" {
		t.Errorf("focus in the confirmation is on %q, want Cancel", id)
	}
	s.screenshot("revoke-confirm")
	s.click("Revoke token")
	s.waitFor("the token is gone from the list", `!document.querySelector('#tokens-body tr[data-token-id="`+firstID+`"]') && document.querySelectorAll("#tokens-body tr").length === 1`)
	gatewayRefuses(t, e, first, "GET", path, 401, "invalid_token")

	// Rotate the second with no overlap: it stops at once.
	s.clickIn(`//tbody[@id="tokens-body"]/tr[1]`, "Rotate")
	s.do("the rotation form opens", chromedp.WaitVisible(chromedp.ID("rotate-overlap")))
	s.choose("rotate-overlap", "")
	s.click("Rotate token")
	third := s.readToken()
	if !strings.Contains(s.text("token-context"), "has stopped working") {
		t.Errorf("the rotation does not say the old token stopped: %q", s.text("token-context"))
	}
	s.closeToken(third)
	if r, _ := e.through(second, "GET", path); r.status != 401 {
		t.Fatalf("a token replaced without overlap: %d %s", r.status, r.body)
	}
	if r, _ := e.through(third, "GET", path); r.status != 200 {
		t.Fatalf("the new token: %d %s", r.status, r.body)
	}
	s.click("Close")
	s.waitFor("the tokens dialog closes and the list is fresh", `!document.getElementById("tokens-dialog").open &&
		document.getElementById("panel-users").getAttribute("aria-busy") !== "true"`)

	// Delete the user: every token stops.
	s.clickIn(row, "Delete")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.click("Delete user")
	s.waitFor("the user is gone from the list", `!document.querySelector('#users-body tr[data-user-id="`+w.exporterID+`"]') && document.getElementById("status").textContent.includes("deleted")`)
	gatewayRefuses(t, e, third, "GET", path, 401, "invalid_token")
	if id := s.activeID(); id != "users-title" {
		t.Errorf("focus after deleting is on %q", id)
	}
	s.screenshot("deleted")
}

// TestConsoleAuditLog: the audit page lists the events, newest first, with
// who made them, and pages with "Load more".
func TestConsoleAuditLog(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	for i := 0; i < 20; i++ { // enough events for two pages
		e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+w.exporterID+"/tokens", map[string]any{"name": fmt.Sprint("t", i)}), 201)
	}
	s := openConsole(t, e)
	s.signIn(w.admin)

	// One change from the console: it is the newest event, Ana's.
	s.openAccountUsers(w.staging, "Staging")
	s.clickIn(`//tr[@data-user-id="`+w.smokeTestsID+`"]`, "Delete")
	s.do("the confirmation opens", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	s.click("Delete user")
	s.waitFor("the user is deleted", `document.getElementById("status").textContent.includes("deleted")`)

	// The Account tab opens on the account last chosen (Staging is not the
	// first), straight on its Programmatic Users.
	s.click("Organization")
	s.waitUsersLoaded("Organization-level users of")
	s.click("Account")
	s.waitUsersLoaded("Account-level users of Staging")
	if got := eval[string](s, "reading the account chosen", `document.getElementById("account-select").value`); got != w.staging {
		t.Errorf("the Account tab opened on %s, want the last chosen, %s", got, w.staging)
	}

	s.click("Audit log")
	s.waitFor("events are listed", `document.querySelectorAll("#audit-body tr").length > 0 && document.getElementById("audit-table").getAttribute("aria-busy") !== "true"`)
	s.checkAccessible("audit log")
	s.screenshot("audit")
	firstRow := eval[[]string](s, "reading the newest event", `[...document.querySelector("#audit-body tr").cells].map(c => c.textContent)`)
	if !strings.Contains(firstRow[1], "Ana Lima (you)") || !strings.Contains(firstRow[2], "user.delete") || firstRow[3] != w.smokeTestsID ||
		!strings.Contains(firstRow[4], "Staging") {
		t.Errorf("the newest event reads %q", firstRow)
	}

	// Load more until the end; then the page holds every event, once, in
	// order.
	for page := 0; eval[bool](s, "is there more", `!document.getElementById("audit-more").hidden`); page++ {
		if page > 10 {
			t.Fatal("Load more never ends")
		}
		before := eval[int](s, "counting events", `document.querySelectorAll("#audit-body tr").length`)
		s.do("loading more", chromedp.Click(chromedp.ID("audit-more")))
		s.waitFor("more events", fmt.Sprintf(`document.querySelectorAll("#audit-body tr").length > %d`, before))
	}
	var all struct {
		Events []struct{ Action, Target string }
	}
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit?limit=1000", nil), 200).json(t, &all)
	shown := eval[[][]string](s, "reading the events", `[...document.querySelectorAll("#audit-body tr")].map(r => [r.querySelector("time").dateTime, r.cells[2].querySelector("code").textContent, r.cells[3].querySelector("code").textContent])`)
	if len(shown) != len(all.Events) || len(shown) <= 25 {
		t.Fatalf("the page lists %d events, the API %d (want more than a page)", len(shown), len(all.Events))
	}
	for i, ev := range all.Events {
		if shown[i][1] != ev.Action || shown[i][2] != ev.Target {
			t.Fatalf("event %d: the page shows %v, the API %+v", i, shown[i], ev)
		}
		if i > 0 && shown[i][0] > shown[i-1][0] {
			t.Fatalf("events %d and %d are not newest first: %v %v", i-1, i, shown[i-1], shown[i])
		}
	}
	if !strings.Contains(s.text("audit-body"), "Operator (Caddy admin endpoint)") {
		t.Error("the operator's changes are not attributed")
	}
}

// TestConsoleAccountAdmin: an account-level admin sees its account only:
// no Organization tab, its account's users, policies and events.
func TestConsoleAccountAdmin(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	s.signIn(w.stagingAdmin)
	s.click("Settings")
	s.waitFor("the account tab opens", `!document.getElementById("account-picker").hidden`)
	if !eval[bool](s, "organization tab hidden", `document.getElementById("tab-organization-item").hidden`) {
		t.Error("an account admin is offered the Organization tab")
	}
	if got := eval[[]string](s, "reading the accounts", `[...document.getElementById("account-select").options].map(o => o.value)`); len(got) != 1 || got[0] != w.staging {
		t.Errorf("an account admin may choose the accounts %v", got)
	}
	s.click("Programmatic Users")
	s.waitUsersLoaded("Account-level users of Staging")
	s.rowCells("staging-smoke-tests")
	if n := eval[int](s, "counting users", `document.querySelectorAll("#users-body tr").length`); n != 1 {
		t.Errorf("an account admin sees %d users, want its account's one", n)
	}
	s.screenshot("account-admin")

	secret := s.addUser(func() {
		s.do("filling in the form", chromedp.SendKeys(chromedp.ID("add-name"), "staging-reader"))
		s.choose("add-role", "policy")
		offered := s.text("add-policies-list")
		if strings.Contains(offered, w.polDeploy) || !strings.Contains(offered, w.polStaging) || !strings.Contains(offered, w.polRead) {
			t.Errorf("an account admin of staging is offered %q", offered)
		}
		s.do("choosing the policy", chromedp.Click(chromedp.ID("add-policy-"+w.polStaging)))
	})
	s.closeToken(secret)
	readerID := s.userIDOf("staging-reader")
	r, id := e.through(secret, "GET", "/api/status")
	if r.status != 200 || id.UserID != readerID || id.Account != w.staging || id.Role != "policy" {
		t.Fatalf("the account admin's new user through the gateway: %d %+v", r.status, id)
	}

	s.click("Audit log")
	s.waitFor("events are listed", `document.querySelectorAll("#audit-body tr").length > 0 && document.getElementById("audit-table").getAttribute("aria-busy") !== "true"`)
	if accounts := eval[[]string](s, "reading the events' accounts", `[...document.querySelectorAll("#audit-body tr")].map(r => r.cells[4].textContent)`); len(accounts) == 0 {
		t.Error("no events")
	} else {
		for _, a := range accounts {
			if !strings.Contains(a, w.staging) {
				t.Errorf("an account admin sees an event of %q", a)
			}
		}
	}
}

// TestConsoleKeyboard: signing in, opening, filling and closing dialogs,
// and signing out, with the keyboard alone; focus is visible and goes where
// it should; the token lives in the tab's sessionStorage only.
func TestConsoleKeyboard(t *testing.T) {
	requireChromium(t)
	e := startConsoleEnv(t)
	w := e.consoleWorld()
	s := openConsole(t, e)
	key := func(what, keys string) { s.do(what, chromedp.KeyEvent(keys)) }
	focusVisible := func(where string) {
		t.Helper()
		if !eval[bool](s, "reading the focus style", `(() => {
			const st = getComputedStyle(document.activeElement);
			return st.outlineStyle !== "none" && parseFloat(st.outlineWidth) >= 2;
		})()`) {
			t.Errorf("focus on %s is not visible", where)
		}
	}

	key("tabbing to the token field", kb.Tab)
	if id := s.activeID(); id != "signin-token" {
		t.Fatalf("the first Tab lands on %q", id)
	}
	focusVisible("the token field")
	key("typing the token", w.admin)
	key("submitting", kb.Enter)
	s.waitFor("signed in", `!document.getElementById("main-nav").hidden`)
	stored := eval[[]string](s, "reading storage", `[sessionStorage.getItem("tokengate.console.token"), String(localStorage.length), document.cookie, location.href]`)
	if stored[0] != w.admin || stored[1] != "0" || stored[2] != "" || strings.Contains(stored[3], w.admin) {
		t.Errorf("after sign-in: sessionStorage %.8q…, localStorage %s items, cookie %q, URL %q", stored[0], stored[1], stored[2], stored[3])
	}

	// Links and buttons answer Enter. A tab opens its one section,
	// Programmatic Users, at once.
	// Each settles (the tab's hash replaced by its section's) before the
	// next key, as a person's next key comes after the page answered.
	for _, id := range []string{"nav-settings", "tab-organization"} {
		s.do("activating "+id, chromedp.Focus(chromedp.ID(id)), chromedp.KeyEvent(kb.Enter))
		s.waitFor("the list opens", `location.hash === "#/settings/organization/programmatic-users" && document.activeElement.id === "users-title"`)
	}
	s.waitUsersLoaded("Organization-level users of acme")
	if id := s.activeID(); id != "users-title" {
		t.Errorf("after opening the list, focus is on %q, want its heading", id)
	}
	key("tabbing to the Add button", kb.Tab)
	if id := s.activeID(); id != "add-user" {
		t.Fatalf("Tab from the heading lands on %q", id)
	}
	focusVisible("the Add button")

	// Open, fill with keys, Escape: closed, focus back on the button.
	key("opening the dialog", kb.Enter)
	s.waitFor("the dialog opens", `document.getElementById("add-dialog").open && document.activeElement.id === "add-name"`)
	key("typing the name", "kb-user")
	key("to the description", kb.Tab)
	key("to the role", kb.Tab)
	if id := s.activeID(); id != "add-role" {
		t.Fatalf("Tab order in the dialog reaches %q, want the role", id)
	}
	key("choosing the next role", kb.ArrowDown)
	s.waitFor("the role changed", `document.getElementById("add-role").value === "editor" && document.getElementById("add-role-hint").textContent.startsWith("Editor")`)
	key("to the first account", kb.Tab)
	key("checking it", " ")
	if !eval[bool](s, "reading the checkbox", `document.activeElement.type === "checkbox" && document.activeElement.checked`) {
		t.Error("Space does not check the focused account")
	}
	focusVisible("a checkbox")
	key("closing", kb.Escape)
	s.waitFor("the dialog closes and focus returns", `!document.getElementById("add-dialog").open && document.activeElement.id === "add-user"`)

	// Again, to the end: Create with Enter; the token dialog closes with
	// Escape and takes the token with it.
	key("opening the dialog", kb.Enter)
	s.waitFor("the dialog opens empty", `document.getElementById("add-dialog").open && document.activeElement.id === "add-name" && document.activeElement.value === ""`)
	key("typing the name", "kb-user")
	for _, k := range []string{kb.Tab, kb.Tab, kb.ArrowDown, kb.Tab, " "} {
		key("filling in the form", k)
	}
	account := eval[string](s, "reading the chosen account", `document.activeElement.checked ? document.activeElement.value : ""`)
	for _, k := range []string{kb.Tab, kb.Tab} {
		key("to the allowed networks", k)
	}
	if id := s.activeID(); id != "add-cidrs" {
		t.Fatalf("Tab order in the dialog reaches %q, want Allowed networks", id)
	}
	for _, want := range []string{"add-rate-requests", "add-rate-window"} {
		key("to the rate limit", kb.Tab)
		if id := s.activeID(); id != want {
			t.Fatalf("Tab order in the dialog reaches %q, want %s", id, want)
		}
	}
	key("to the Create button", kb.Tab)
	if id := s.activeID(); id != "add-submit" {
		t.Fatalf("Tab order in the dialog reaches %q, want Create", id)
	}
	key("creating", kb.Enter)
	secret := s.readToken()
	key("closing the token dialog", kb.Escape)
	s.waitFor("the token dialog closes and focus returns", `!document.getElementById("token-dialog").open && document.activeElement.id === "add-user"`)
	s.checkSecretGone(secret)
	gatewayOK(t, e, secret, "GET", "/api/x?accountId="+account, upstreamIdentity{UserID: s.userIDOf("kb-user"),
		UserType: "programmatic", UserName: "kb-user", Org: w.org, Account: account, Role: "editor"})

	// Sign out: the token leaves the browser; a reload stays signed out.
	s.do("signing out", chromedp.Focus(chromedp.ID("sign-out")), chromedp.KeyEvent(kb.Enter))
	s.waitFor("signed out", `!document.getElementById("view-signin").hidden && document.activeElement.id === "signin-title"`)
	if n := eval[int](s, "reading storage", `sessionStorage.length + localStorage.length`); n != 0 {
		t.Errorf("%d items stay in storage after sign-out", n)
	}
	s.do("reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("signin-token")))
	if !eval[bool](s, "still signed out", `document.getElementById("main-nav").hidden`) {
		t.Error("a reload after sign-out is signed in")
	}
}
