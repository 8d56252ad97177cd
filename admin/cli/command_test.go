package cli_test

import (
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// adminCommands are the subcommands of `tokengate`.
var adminCommands = []string{"org", "account", "user", "token", "policy", "audit"}

const docsURL = "https://github.com/tokengate/tokengate/blob/main/docs/cli.md (docs/cli.md in the source)"

// TestOneTopLevelCommand: the plugin adds exactly one command to Caddy,
// `tokengate`, so it cannot collide with another plugin's generic names.
// Commands are told apart by the package their function lives in.
func TestOneTopLevelCommand(t *testing.T) {
	commands := caddycmd.Commands()
	if _, ok := commands["tokengate"]; !ok {
		t.Fatal("no tokengate command is registered")
	}
	for name, c := range commands {
		var fn any = c.CobraFunc
		if c.CobraFunc == nil {
			fn = c.Func
		}
		pkg := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
		if strings.HasPrefix(pkg, "github.com/tokengate/tokengate") && name != "tokengate" {
			t.Errorf("the plugin registers the top-level command %q (%s)", name, pkg)
		}
	}
	for _, name := range adminCommands {
		if _, ok := commands[name]; ok {
			t.Errorf("%q is a top-level command", name)
		}
	}
}

// TestLongAndShortForms: a Caddy build with the plugin takes `tokengate
// user create …`; the tokengate binary takes that and the short `user
// create …`; all send the same request. Another Caddy build has no `user`.
func TestLongAndShortForms(t *testing.T) {
	create := []string{"user", "create", "--org", "acme", "--type", "ui", "--level", "organization",
		"--accounts", "act-1a2b3c4d", "--role", "viewer", "--name", "Ana", "--email", "ana@example.com"}
	want := map[string]any{"type": "ui", "level": "organization", "accounts": []any{"act-1a2b3c4d"},
		"role": "viewer", "name": "Ana", "email": "ana@example.com"}
	for _, c := range []struct {
		name string
		run  func(t *testing.T, extraEnv []string, args ...string) result
		args []string
	}{
		{"caddy tokengate user create", runAsCaddy, append([]string{"tokengate"}, create...)},
		{"tokengate tokengate user create", run, append([]string{"tokengate"}, create...)},
		{"tokengate user create", run, create},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t, 201, `{"user":{"id":"u-1"}}`)
			r := c.run(t, nil, append(c.args, "--address", rec.address())...).ok(t)
			if r.field(t, "user", "id") != "u-1" {
				t.Fatalf("stdout %q", r.stdout)
			}
			got := rec.received()
			if len(got) != 1 || got[0].method != "POST" || got[0].path != "/tokengate/orgs/acme/users" {
				t.Fatalf("sent %v", got)
			}
			checkBody(t, got[0], want)
		})
	}

	t.Run("caddy user create", func(t *testing.T) {
		rec := startRecorder(t, 201, `{}`)
		r := runAsCaddy(t, nil, append(create, "--address", rec.address())...).failed(t)
		if !strings.Contains(r.stderr, `unknown command "user"`) {
			t.Fatalf("stderr %q", r.stderr)
		}
		if n := len(rec.received()); n != 0 {
			t.Fatalf("%d requests were sent", n)
		}
	})
}

// TestHelp: the tokengate binary's help lists the admin commands first,
// points at this project's docs rather than Caddy's, then lists Caddy's
// commands; the commands' own help shows the form that was typed.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"help"}, {"--help"}, {"-h"}} {
		t.Run("tokengate "+strings.Join(args, " "), func(t *testing.T) {
			r := run(t, nil, args...).ok(t)
			if !strings.Contains(r.stdout, docsURL) || strings.Contains(r.stdout, "caddyserver.com") {
				t.Errorf("help does not point at %s alone:\n%s", docsURL, r.stdout)
			}
			last := -1
			for _, name := range append(adminCommands, "adapt", "run", "validate", "version") {
				i := strings.Index(r.stdout, "\n  "+name+" ")
				if i < 0 || i < last {
					t.Errorf("%q is not listed, or not in order (admin commands first):\n%s", name, r.stdout)
				}
				last = i
			}
			if strings.Contains(r.stdout, "Manages tokengate organizations, accounts") {
				t.Errorf("the tokengate command is listed among Caddy's:\n%s", r.stdout)
			}
		})
	}

	for _, c := range []struct {
		name string
		run  func(t *testing.T, extraEnv []string, args ...string) result
		args []string
		want []string
	}{
		{"help user", run, []string{"help", "user"}, []string{"tokengate user [command]", "create"}},
		{"user create --help", run, []string{"user", "create", "--help"},
			[]string{"tokengate user create [flags]", "  tokengate user create --org acme --type ui", "--email", "required for --type ui"}},
		{"org create --help", run, []string{"org", "create", "--help"},
			[]string{"tokengate org create --name Acme --org acme", "--id is a deprecated alias"}},
		{"caddy tokengate user create --help", runAsCaddy, []string{"tokengate", "user", "create", "--help"},
			[]string{"caddy tokengate user create [flags]", "  caddy tokengate user create --org acme", "--email"}},
		{"caddy tokengate --help", runAsCaddy, []string{"tokengate", "--help"}, []string{"caddy tokengate [command]", "user", "policy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.run(t, nil, c.args...).ok(t)
			for _, w := range append(c.want, docsURL) {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "caddyserver.com") || strings.Contains(r.stdout, "tokengate tokengate") {
				t.Errorf("help points at Caddy's docs or shows the long form in the tokengate binary:\n%s", r.stdout)
			}
		})
	}
}

// TestExitCodes: the exit status is Caddy's: caddy.ExitCodeSuccess, or
// caddy.ExitCodeFailedStartup for any failure, whatever failed; stderr
// says what.
func TestExitCodes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := l.Addr().String()
	l.Close()
	for _, c := range []struct {
		name   string
		status int      // of the stand-in API
		args   []string // --address is added
		exit   int
		stderr string
	}{
		{"success", 200, []string{"org", "get", "--org", "acme"}, caddy.ExitCodeSuccess, ""},
		{"usage mistake", 200, []string{"org", "get"}, caddy.ExitCodeFailedStartup, "missing required flag --org"},
		{"unknown flag", 200, []string{"org", "get", "--org", "acme", "--verbose"}, caddy.ExitCodeFailedStartup, "unknown flag"},
		{"unknown command before a flag", 200, []string{"user", "frobnicate", "--org", "acme"}, caddy.ExitCodeFailedStartup,
			`unknown command "frobnicate" for`},
		{"unknown resource before a flag", 200, []string{"frob", "--org", "acme"}, caddy.ExitCodeFailedStartup, `unknown command "frob"`},
		{"refused", 409, []string{"org", "get", "--org", "acme"}, caddy.ExitCodeFailedStartup, "conflict: taken (HTTP 409)"},
		{"server error", 503, []string{"org", "get", "--org", "acme"}, caddy.ExitCodeFailedStartup, "(HTTP 503)"},
		{"unreachable", 0, []string{"org", "get", "--org", "acme"}, caddy.ExitCodeFailedStartup, "reaching Caddy's admin endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			address := unreachable
			if c.status != 0 {
				body := `{"id":"acme"}`
				if c.status >= 400 {
					body = `{"error":{"code":"conflict","message":"taken"}}`
				}
				address = startRecorder(t, c.status, body).address()
			}
			for _, form := range []struct {
				name string
				run  func(t *testing.T, extraEnv []string, args ...string) result
				args []string
			}{
				{"tokengate", run, c.args},
				{"caddy tokengate", runAsCaddy, append([]string{"tokengate"}, c.args...)},
			} {
				r := form.run(t, nil, append(form.args, "--address", address)...).must(t, c.exit)
				if !strings.Contains(r.stderr, c.stderr) {
					t.Errorf("%s: stderr %q, want %q", form.name, r.stderr, c.stderr)
				}
			}
		})
	}
}
