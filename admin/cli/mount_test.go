package cli_test

import (
	"strings"
	"testing"
)

// TestThroughMount reads and writes through a tokengate_admin mount with
// --url, as an organization admin whose token is in TOKENGATE_TOKEN.
func TestThroughMount(t *testing.T) {
	e := startEnv(t)
	e.op(t, "org", "create", "--name", "Acme", "--org", "acme").ok(t)
	e.op(t, "org", "create", "--name", "Globex", "--org", "globex").ok(t)
	act := e.op(t, "account", "create", "--org", "acme", "--name", "prod").ok(t).field(t, "id")
	adminTok := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "organization",
		"--accounts", act, "--role", "admin", "--name", "ops").ok(t).field(t, "token", "secret")

	if got := e.as(t, adminTok, "org", "get", "--org", "acme").ok(t).field(t, "id"); got != "acme" {
		t.Fatalf("org get through the mount: %q", got)
	}
	act2 := e.as(t, adminTok, "account", "create", "--org", "acme", "--name", "staging").ok(t).field(t, "id")
	if n := len(e.as(t, adminTok, "account", "list", "--org", "acme").ok(t).list(t, "accounts")); n != 2 {
		t.Fatalf("%d accounts, want 2", n)
	}
	bot := e.as(t, adminTok, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account",
		"--account", act2, "--role", "editor", "--name", "bot").ok(t)
	checkSecretShownOnce(t, bot, bot.field(t, "token", "secret"))
	botID := bot.field(t, "user", "id")
	tok := e.as(t, adminTok, "token", "create", "--org", "acme", "--user", botID, "--expires_in", "24h").ok(t)
	checkSecretShownOnce(t, tok, tok.field(t, "secret"))
	e.as(t, adminTok, "token", "list", "--org", "acme", "--user", botID).ok(t)
	e.as(t, adminTok, "token", "revoke", "--org", "acme", "--user", botID, "--token", tok.field(t, "id")).ok(t)
	pol := e.as(t, adminTok, "policy", "create", "--org", "acme", "--name", "read", "--account", act2,
		"--statements", `[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]`).ok(t).field(t, "id")
	e.as(t, adminTok, "policy", "list", "--org", "acme").ok(t)
	e.as(t, adminTok, "policy", "delete", "--org", "acme", "--policy", pol).ok(t)
	e.as(t, adminTok, "user", "list", "--org", "acme", "--account", act2).ok(t)
	e.as(t, adminTok, "user", "delete", "--org", "acme", "--user", botID).ok(t)
	e.as(t, adminTok, "audit", "list", "--org", "acme").ok(t)
	deleted := e.as(t, adminTok, "audit", "list", "--org", "acme", "--action", "user.delete", "--actor", "operator").ok(t).list(t, "events")
	if len(deleted) != 0 {
		t.Fatalf("the operator deleted no user, yet: %v", deleted)
	}
	if n := len(e.as(t, adminTok, "audit", "list", "--org", "acme", "--action", "user.delete").ok(t).list(t, "events")); n != 1 {
		t.Fatalf("%d user.delete events, want 1", n)
	}

	// What the mount refuses reaches the user as the API said it.
	for _, c := range []struct {
		name, tok string
		args      []string
		want      string
	}{
		{"organizations are the operator's", adminTok, []string{"org", "create", "--name", "Initech"}, "forbidden:"},
		{"another organization", adminTok, []string{"org", "get", "--org", "globex"}, "forbidden:"},
		{"a token that is not one", "tgp_nope", []string{"org", "get", "--org", "acme"}, "unauthorized:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.as(t, c.tok, c.args...).failed(t)
			if !strings.Contains(r.stderr, c.want) || r.stdout != "" {
				t.Fatalf("stdout %q, stderr %q; want %q on stderr", r.stdout, r.stderr, c.want)
			}
		})
	}
}

// TestErrorsFromTheAPI: an error answer exits 1 with the API's code and
// message on stderr and nothing on stdout.
func TestErrorsFromTheAPI(t *testing.T) {
	e := startEnv(t)
	e.op(t, "org", "create", "--name", "Acme", "--org", "acme").ok(t)
	act := e.op(t, "account", "create", "--org", "acme", "--name", "prod").ok(t).field(t, "id")
	user := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", act,
		"--role", "viewer", "--name", "bot").ok(t).field(t, "user", "id")
	for _, c := range []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"unknown org", []string{"org", "get", "--org", "nope"}, "not_found: organization nope not found (HTTP 404)"},
		{"unknown user", []string{"user", "get", "--org", "acme", "--user", "u-nope"}, "not_found:"},
		{"duplicate org", []string{"org", "create", "--name", "Acme", "--org", "acme"}, "conflict:"},
		{"account in use", []string{"account", "delete", "--org", "acme", "--account", act}, "conflict:"},
		{"bad field", []string{"user", "create", "--org", "acme", "--type", "robot", "--level", "account", "--account", act,
			"--role", "viewer", "--name", "x"}, "invalid_request: type"},
		{"bad duration", []string{"token", "create", "--org", "acme", "--user", user, "--expires-in", "soon"}, "invalid_request: expires_in"},
		{"bad statements", []string{"policy", "create", "--org", "acme", "--name", "p", "--statements", `[{"effect":"maybe"}]`}, "invalid_request:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.op(t, c.args...).failed(t)
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr %q, want it to hold %q", r.stderr, c.want)
			}
			if r.stdout != "" {
				t.Fatalf("stdout %q on an error", r.stdout)
			}
		})
	}
}
