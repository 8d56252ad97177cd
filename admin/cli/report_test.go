package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/token"
)

// report runs `token report` with stdin as its standard input.
func report(t *testing.T, stdin string, extraEnv []string, args ...string) result {
	t.Helper()
	return runProgramInput(t, binary, strings.NewReader(stdin), extraEnv, append([]string{"token", "report"}, args...)...)
}

// TestTokenReport: `token report` reads tokens from standard input, one a
// line, and the live ones stop working: through Caddy's admin endpoint and
// through a tokengate_admin mount, with no token of its own. It prints the
// API's answer and never a token.
func TestTokenReport(t *testing.T) {
	e := startEnv(t)
	e.op(t, "org", "create", "--name", "Acme", "--org", "acme").ok(t)
	act := e.op(t, "account", "create", "--org", "acme", "--name", "prod").ok(t).field(t, "id")
	user := e.op(t, "user", "create", "--org", "acme", "--type", "programmatic", "--level", "account", "--account", act,
		"--role", "viewer", "--name", "bot").ok(t)
	userID, first := user.field(t, "user", "id"), user.field(t, "token", "secret")
	second := e.op(t, "token", "create", "--org", "acme", "--user", userID, "--name", "ci").ok(t).field(t, "secret")
	third := e.op(t, "token", "create", "--org", "acme", "--user", userID, "--name", "laptop").ok(t).field(t, "secret")

	for _, c := range []struct {
		name   string
		tokens string
		args   []string
	}{
		// A byte order mark starts files from Windows editors and
		// PowerShell; CRLF line ends too.
		{"admin endpoint", "\ufeff" + first + "\r\n\r\n   " + second + "  \r\nnot a token\n", []string{"--address", e.adminAddr}},
		// No TOKENGATE_TOKEN: the route is public.
		{"mount", third, []string{"--url", e.mountURL}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := report(t, c.tokens, nil, c.args...).ok(t)
			if strings.TrimSpace(r.stdout) != "{}" {
				t.Fatalf("stdout %q, want the API's answer {}", r.stdout)
			}
			if !strings.Contains(r.stderr, "Reported ") {
				t.Fatalf("stderr %q", r.stderr)
			}
			for _, secret := range []string{first, second, third} {
				if strings.Contains(r.stdout+r.stderr, secret[4:44]) {
					t.Fatal("a token was printed")
				}
			}
		})
	}
	// The revoker's worker runs just after the answer: wait for the three
	// revocations to show, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		listed := e.op(t, "token", "list", "--org", "acme", "--user", userID).ok(t).list(t, "tokens")
		if len(listed) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported tokens still listed: %v", listed)
		}
	}
	events := e.op(t, "audit", "list", "--org", "acme").ok(t).list(t, "events")
	reported := 0
	for _, ev := range events {
		if m, _ := ev.(map[string]any); m["reason"] == "reported" {
			reported++
		}
	}
	if reported != 3 {
		t.Fatalf("%d events with reason reported, want 3: %v", reported, events)
	}
}

// TestTokenReportRequests: tokens go in batches of at most 1000, without
// a bearer token even when one is in the environment; lines that are not
// tokens are skipped and counted; tokens are never taken from arguments;
// an empty input sends nothing.
func TestTokenReportRequests(t *testing.T) {
	var input strings.Builder
	var want []string
	for i := 0; i < 2500; i++ {
		tok, err := token.Generate(token.Personal)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, tok)
		input.WriteString(tok + "\r\n")
		if i%1000 == 0 {
			input.WriteString("# a comment\n" + strings.Repeat("x", 10000) + "\n")
		}
	}
	rec := startRecorder(t, 202, `{}`)
	r := report(t, input.String(), []string{"TOKENGATE_TOKEN=tgp_" + strings.Repeat("a", 46)}, "--url", rec.URL+"/admin").ok(t)
	if !strings.Contains(r.stderr, "Skipped 6 lines") || !strings.Contains(r.stderr, "Reported 2500 tokens") {
		t.Fatalf("stderr %q", r.stderr)
	}
	got := rec.received()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 batches", len(got))
	}
	var sent []string
	for i, req := range got {
		if req.method != "POST" || req.path != "/admin/credentials/revoke" || req.header.Get("Authorization") != "" ||
			req.header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: %s %s %v", i, req.method, req.path, req.header)
		}
		var body struct{ Credentials []string }
		if err := json.Unmarshal(req.body, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Credentials) > 1000 {
			t.Fatalf("batch %d holds %d tokens", i, len(body.Credentials))
		}
		sent = append(sent, body.Credentials...)
	}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Fatal("the tokens sent are not those read, in order")
	}

	for _, c := range []struct {
		name   string
		stdin  string
		args   []string
		stderr string
	}{
		{"a token as argument", "", []string{want[0]}, "not taken as arguments"},
		{"no input", "", nil, "no tokens on standard input"},
		{"nothing but junk", "tgp_nope\nhello\n", nil, "Skipped 2 lines"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t, 202, `{}`)
			r := report(t, c.stdin, nil, append(c.args, "--address", rec.address())...).failed(t)
			if !strings.Contains(r.stderr, c.stderr) || strings.Contains(r.stderr, want[0][4:44]) {
				t.Fatalf("stderr %q", r.stderr)
			}
			if n := len(rec.received()); n != 0 {
				t.Fatalf("%d requests were sent", n)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		rec := startRecorder(t, http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"try again in 60 seconds"}}`)
		r := report(t, want[0]+"\n", nil, "--address", rec.address()).failed(t)
		if !strings.Contains(r.stderr, "rate_limited: try again in 60 seconds (HTTP 429)") || r.stdout != "" {
			t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})
}
