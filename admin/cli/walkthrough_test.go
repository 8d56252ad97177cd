package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWalkthrough drives the whole life of an organization through the
// binary, as the operator on Caddy's admin endpoint.
func TestWalkthrough(t *testing.T) {
	e := startEnv(t)
	var secrets []string

	org := e.op(t, "org", "create", "--name", "Acme", "--org", "acme").ok(t)
	if got := org.field(t, "id"); got != "acme" {
		t.Fatalf("org id %q", got)
	}
	if !strings.Contains(org.stdout, "\n  \"id\": \"acme\"") {
		t.Errorf("the answer is not pretty-printed:\n%s", org.stdout)
	}
	e.op(t, "org", "get", "--org", "acme").ok(t)
	checkStatus(t, e.op(t, "status").ok(t))
	prod := e.op(t, "account", "create", "--org", "acme", "--name", "prod").ok(t).field(t, "id")
	staging := e.op(t, "account", "create", "--org", "acme", "--name", "staging", "--account", "act-0000beef").ok(t).field(t, "id")
	if staging != "act-0000beef" {
		t.Fatalf("account id %q", staging)
	}
	if n := len(e.op(t, "account", "list", "--org", "acme").ok(t).list(t, "accounts")); n != 2 {
		t.Fatalf("%d accounts, want 2", n)
	}
	// --output id: the id alone, or each listed one's a line.
	if got := e.op(t, "account", "list", "--org", "acme", "--output", "id").ok(t).stdout; got != prod+"\n"+staging+"\n" && got != staging+"\n"+prod+"\n" {
		t.Errorf("account list --output id: %q", got)
	}
	if got := e.op(t, "account", "get", "--org", "acme", "--account", prod, "--output", "id").ok(t).stdout; got != prod+"\n" {
		t.Errorf("account get --output id: %q", got)
	}
	for _, out := range []string{"id", "table"} {
		if r := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", prod,
			"--role", "viewer", "--name", "x", "--output", out).failed(t); !strings.Contains(r.stderr, "--output secret") {
			t.Errorf("--output %s on a command showing a secret: %s", out, r.stderr)
		}
	}
	// --output table: a header and a row per account, for people.
	table := strings.Split(strings.TrimSuffix(e.op(t, "account", "list", "--org", "acme", "--output", "table").ok(t).stdout, "\n"), "\n")
	if len(table) != 3 || !strings.HasPrefix(table[0], "ID ") || !strings.Contains(table[0], "NAME") ||
		!slices.ContainsFunc(table[1:], func(l string) bool { return strings.HasPrefix(l, staging+" ") && strings.Contains(l, "staging") }) {
		t.Errorf("account list --output table:\n%s", strings.Join(table, "\n"))
	}
	if got := e.op(t, "account", "get", "--org", "acme", "--account", prod, "--output", "table").ok(t).stdout; strings.Count(got, "\n") != 2 ||
		!strings.Contains(got, prod) {
		t.Errorf("account get --output table:\n%s", got)
	}

	// A programmatic user comes with its secret, printed once.
	bot := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account",
		"--account", prod, "--role", "viewer", "--name", "ci-bot", "--description", "deploys").ok(t)
	botID, secret := bot.field(t, "user", "id"), bot.field(t, "token", "secret")
	secrets = append(secrets, secret)
	checkSecretShownOnce(t, bot, secret)

	// Comma-separated and repeated list flags make one list.
	admin := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "organization",
		"--accounts", prod+", "+staging, "--role", "admin", "--name", "ops").ok(t)
	secrets = append(secrets, admin.field(t, "token", "secret"))
	checkAccounts(t, admin.json(t)["user"], prod, staging)
	// --output secret: the secret alone, for scripts.
	scripted := e.op(t, "token", "create", "--org", "acme", "--user", admin.field(t, "user", "id"), "--name", "scripted", "--output", "secret").ok(t)
	if s := strings.TrimSuffix(scripted.stdout, "\n"); !strings.HasPrefix(s, "tgp_") || strings.Contains(s, "\n") ||
		!strings.Contains(scripted.stderr, "not be shown again") {
		t.Errorf("user create --output secret: %q / %q", scripted.stdout, scripted.stderr)
	} else {
		secrets = append(secrets, s)
	}

	ui := e.op(t, "user", "create", "--org", "acme", "--type", "ui", "--level", "organization",
		"--accounts", prod, "--accounts", staging, "--role", "viewer", "--name", "Ana", "--email", "ana@example.com").ok(t)
	checkAccounts(t, ui.json(t)["user"], prod, staging)
	if strings.Contains(ui.stderr, "not be shown again") {
		t.Errorf("a ui user has no token, yet the secret notice was printed: %s", ui.stderr)
	}

	// Tokens: both spellings of --expires-in; rotation; listing shows no
	// secret; revocation.
	var tokenIDs []string
	for _, flag := range []string{"--expires-in", "--expires_in"} {
		t.Run(flag, func(t *testing.T) {
			tok := e.op(t, "token", "create", "--org", "acme", "--user", botID, "--name", "laptop", flag, "720h").ok(t)
			s := tok.field(t, "secret")
			secrets = append(secrets, s)
			checkSecretShownOnce(t, tok, s)
			if tok.field(t, "expires_at") == "" {
				t.Fatalf("%s 720h gave no expiry: %s", flag, tok.stdout)
			}
			tokenIDs = append(tokenIDs, tok.field(t, "id"))
		})
	}
	rotated := e.op(t, "token", "create", "--org", "acme", "--user", botID, "--replaces", tokenIDs[0], "--overlap", "1h").ok(t)
	secrets = append(secrets, rotated.field(t, "secret"))
	listed := e.op(t, "token", "list", "--org", "acme", "--user", botID).ok(t)
	if n := len(listed.list(t, "tokens")); n != 4 {
		t.Fatalf("%d tokens listed, want 4:\n%s", n, listed.stdout)
	}
	for _, s := range secrets {
		if strings.Contains(listed.stdout, s) {
			t.Fatal("token list shows a secret")
		}
	}
	revoked := e.op(t, "token", "revoke", "--org", "acme", "--user", botID, "--token", tokenIDs[1]).ok(t)
	if revoked.stdout != "" || !strings.Contains(revoked.stderr, tokenIDs[1]+" revoked") {
		t.Fatalf("revoke printed stdout %q, stderr %q", revoked.stdout, revoked.stderr)
	}

	// Policies: statements as a flag and from a file.
	stmts := `[{"effect":"allow","methods":["GET"],"paths":["/api/**"]}]`
	pol := e.op(t, "policy", "create", "--org", "acme", "--name", "read", "--account", prod, "--statements", stmts).ok(t).field(t, "id")
	doc := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(doc, []byte(`{"name":"from file","description":"d","statements":`+stmts+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pol2 := e.op(t, "policy", "create", "--org", "acme", "--file", doc).ok(t)
	if pol2.field(t, "name") != "from file" {
		t.Fatalf("policy from a file: %s", pol2.stdout)
	}
	updated := e.op(t, "policy", "update", "--org", "acme", "--policy", pol2.field(t, "id"), "--file", doc, "--name", "renamed").ok(t)
	if updated.field(t, "name") != "renamed" {
		t.Fatalf("--name did not override the file: %s", updated.stdout)
	}
	e.op(t, "policy", "get", "--org", "acme", "--policy", pol).ok(t)
	if n := len(e.op(t, "policy", "list", "--org", "acme").ok(t).list(t, "policies")); n != 2 {
		t.Fatalf("%d policies, want 2", n)
	}
	polUser := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", prod,
		"--role", "policy", "--policies", pol, "--name", "reader").ok(t)
	secrets = append(secrets, polUser.field(t, "token", "secret"))

	// Users: paging, update (only the flags given), delete.
	page := e.op(t, "user", "list", "--org", "acme", "--type", "programmatic", "--limit", "2").ok(t)
	if len(page.list(t, "users")) != 2 || page.field(t, "next_cursor") == "" {
		t.Fatalf("first page: %s", page.stdout)
	}
	rest := e.op(t, "user", "list", "--org", "acme", "--type", "programmatic", "--cursor", page.field(t, "next_cursor")).ok(t)
	if n := len(rest.list(t, "users")); n != 1 {
		t.Fatalf("second page has %d users, want 1: %s", n, rest.stdout)
	}
	e.op(t, "user", "update", "--org", "acme", "--user", botID, "--disabled=true").ok(t)
	got := e.op(t, "user", "get", "--org", "acme", "--user", botID).ok(t).json(t)
	if got["disabled"] != true || got["description"] != "deploys" || got["name"] != "ci-bot" {
		t.Fatalf("after --disabled=true: %v", got)
	}
	e.op(t, "user", "update", "--org", "acme", "--user", botID, "--disabled=false", "--name", "ci").ok(t)

	// A rate limit: set at creation, shown in canonical form, changed,
	// refused when out of range (the API's message reaches the user),
	// removed with none.
	metered := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", prod,
		"--role", "viewer", "--name", "metered", "--rate-limit", "100/120s").ok(t)
	secrets = append(secrets, metered.field(t, "token", "secret"))
	meteredID := metered.field(t, "user", "id")
	checkRateLimit(t, metered.json(t)["user"], 100, "2m")
	checkRateLimit(t, e.op(t, "user", "update", "--org", "acme", "--user", meteredID, "--rate-limit", "5000/1h").ok(t).json(t), 5000, "1h")
	if r := e.op(t, "user", "update", "--org", "acme", "--user", meteredID, "--rate-limit", "10/1d").failed(t); !strings.Contains(r.stderr, "rate_limit.window") {
		t.Fatalf("a window in days: stderr %q", r.stderr)
	}
	checkRateLimit(t, e.op(t, "user", "get", "--org", "acme", "--user", meteredID).ok(t).json(t), 5000, "1h")
	if got := e.op(t, "user", "update", "--org", "acme", "--user", meteredID, "--rate-limit", "none").ok(t).json(t); got["rate_limit"] != nil {
		t.Fatalf("after --rate-limit none: %v", got)
	}
	deleted := e.op(t, "user", "delete", "--org", "acme", "--user", polUser.field(t, "user", "id")).ok(t)
	if deleted.stdout != "" {
		t.Fatalf("delete printed %q", deleted.stdout)
	}
	e.op(t, "policy", "delete", "--org", "acme", "--policy", pol).ok(t)

	// An account no account-level user or policy belongs to can go; it
	// leaves organization-level users' lists.
	e.op(t, "account", "delete", "--org", "acme", "--account", staging).ok(t)
	checkAccounts(t, e.op(t, "user", "get", "--org", "acme", "--user", admin.field(t, "user", "id")).ok(t).json(t), prod)

	// Webhooks: the secret shown once; --webhook-url, since --url is the
	// admin mount's.
	wh := e.op(t, "webhook", "create", "--org", "acme", "--webhook-url", "http://127.0.0.1:9/hook", "--events", "user.create,token.revoke").ok(t)
	whID, whSecret := wh.field(t, "id"), wh.field(t, "secret")
	if !strings.HasPrefix(whSecret, "whsec_") || strings.Count(wh.stdout, whSecret) != 1 || !strings.Contains(wh.stderr, "not be shown again") {
		t.Errorf("webhook create: %s / %s", wh.stdout, wh.stderr)
	}
	if n := len(e.op(t, "webhook", "list", "--org", "acme").ok(t).list(t, "webhooks")); n != 1 {
		t.Fatalf("%d webhooks, want 1", n)
	}
	if got := e.op(t, "webhook", "update", "--org", "acme", "--webhook", whID, "--disabled=true").ok(t).json(t)["disabled"]; got != true {
		t.Errorf("webhook update --disabled=true: disabled %v", got)
	}
	if strings.Contains(e.op(t, "webhook", "get", "--org", "acme", "--webhook", whID).ok(t).stdout, whSecret) {
		t.Error("webhook get shows the secret")
	}
	e.op(t, "webhook", "deliveries", "--org", "acme", "--webhook", whID, "--limit", "5").ok(t).list(t, "deliveries")
	rot := e.op(t, "webhook", "rotate-secret", "--org", "acme", "--webhook", whID, "--overlap", "24h").ok(t)
	if s := rot.field(t, "secret"); s == whSecret || strings.Count(rot.stdout, s) != 1 || !strings.Contains(rot.stderr, "not be shown again") ||
		rot.json(t)["previous_secret_expires_at"] == nil {
		t.Errorf("webhook rotate-secret: %s / %s", rot.stdout, rot.stderr)
	}
	if got := e.op(t, "webhook", "delete", "--org", "acme", "--webhook", whID).ok(t).stderr; !strings.Contains(got, "webhook "+whID+" deleted") {
		t.Errorf("webhook delete printed %q", got)
	}
	if n := len(e.op(t, "org", "list").ok(t).list(t, "orgs")); n != 1 {
		t.Errorf("org list: %d organizations, want 1", n)
	}

	events := e.op(t, "audit", "list", "--org", "acme", "--limit", "3").ok(t)
	if n := len(events.list(t, "events")); n != 3 {
		t.Fatalf("%d audit events, want 3: %s", n, events.stdout)
	}
	checkLogHoldsNone(t, e, secrets)
}

// checkSecretShownOnce: the secret is in stdout exactly once, never on
// stderr, and stderr says to store it.
func checkSecretShownOnce(t *testing.T, r result, secret string) {
	t.Helper()
	if !strings.HasPrefix(secret, "tg") {
		t.Fatalf("%q is not a token", secret)
	}
	if n := strings.Count(r.stdout, secret); n != 1 {
		t.Errorf("the secret is in stdout %d times, want once", n)
	}
	if strings.Contains(r.stderr, secret) {
		t.Errorf("the secret is on stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "not be shown again") {
		t.Errorf("stderr does not tell the user to store the secret: %q", r.stderr)
	}
}

// checkAccounts: the user object lists exactly the accounts want.
func checkAccounts(t *testing.T, user any, want ...string) {
	t.Helper()
	u, _ := user.(map[string]any)
	got, _ := u["accounts"].([]any)
	if len(got) != len(want) {
		t.Fatalf("accounts %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("accounts %v, want %v", got, want)
		}
	}
}

// checkRateLimit: the user object's rate_limit is requests per window.
func checkRateLimit(t *testing.T, user any, requests float64, window string) {
	t.Helper()
	u, _ := user.(map[string]any)
	got, _ := u["rate_limit"].(map[string]any)
	if len(got) != 2 || got["requests"] != requests || got["window"] != window {
		t.Fatalf("rate_limit %v, want %v per %s", u["rate_limit"], requests, window)
	}
}

// checkLogHoldsNone: no secret reached anything Caddy logged.
func checkLogHoldsNone(t *testing.T, e *env, secrets []string) {
	t.Helper()
	data, err := os.ReadFile(e.logFile)
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	if len(data) == 0 {
		t.Fatal("nothing was logged: the check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(string(data), s) {
			t.Errorf("a secret (%s…) appears in the log", s[:8])
		}
	}
}

// checkStatus: the status answer says the gateway is ready, names its
// store's one member as the leader, the webhook leader, and the watch's
// revision within the cluster's.
func checkStatus(t *testing.T, r result) {
	t.Helper()
	var st struct {
		Status string
		Store  struct {
			Reachable bool
			Watch     int64 `json:"watch_revision"`
			Cluster   int64 `json:"cluster_revision"`
			Members   []struct {
				Name, Version string
				Leader        bool
				Error         string
			}
		}
		Webhooks struct {
			Leading bool
			Leader  string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, r.stdout)
	}
	m := st.Store.Members
	if st.Status != "ready" || !st.Store.Reachable || len(m) != 1 || !m[0].Leader || m[0].Version == "" || m[0].Error != "" ||
		st.Store.Watch == 0 || st.Store.Cluster < st.Store.Watch || !st.Webhooks.Leading || !strings.Contains(st.Webhooks.Leader, "pid") {
		t.Errorf("status:\n%s", r.stdout)
	}
}
