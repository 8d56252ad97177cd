package caddyfile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files from the current output")

func adapt(t *testing.T, body []byte) ([]byte, error) {
	t.Helper()
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := adapter.Adapt(body, map[string]any{"filename": "Caddyfile"})
	for _, w := range warnings {
		t.Logf("warning: %s", w.String())
	}
	return out, err
}

// TestAdaptGolden: every testdata/adapt/*.caddyfile adapts to the JSON beside
// it (go test -update rewrites them).
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/adapt/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := adapt(t, body)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./caddyfile -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// TestGlobalOptionErrors: mistakes are reported with the line they are on.
func TestGlobalOptionErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown sub-option", "{\n\ttokengate {\n\t\tcache_size 10\n\t}\n}\n", "Caddyfile:3"},
		{"repeated sub-option", "{\n\ttokengate {\n\t\tcache_ttl 1m\n\t\tcache_ttl 2m\n\t}\n}\n", "Caddyfile:4"},
		{"argument on the option", "{\n\ttokengate foo\n}\n", "Caddyfile:2"},
		{"bad duration", "{\n\ttokengate {\n\t\tmax_stale soon\n\t}\n}\n", "Caddyfile:3"},
		{"zero duration", "{\n\ttokengate {\n\t\tcache_ttl 0s\n\t}\n}\n", "Caddyfile:3"},
		{"bad number", "{\n\ttokengate {\n\t\tcache_entries lots\n\t}\n}\n", "Caddyfile:3"},
		{"two arguments", "{\n\ttokengate {\n\t\tembedded_dir /a /b\n\t}\n}\n", "Caddyfile:3"},
		{"unknown etcd sub-option", "{\n\ttokengate {\n\t\tetcd {\n\t\t\tendpoint http://a:1\n\t\t}\n\t}\n}\n", "Caddyfile:4"},
		{"repeated etcd sub-option", "{\n\ttokengate {\n\t\tetcd {\n\t\t\tendpoints http://a:1\n\t\t\tprefix /a\n\t\t\tprefix /b\n\t\t}\n\t}\n}\n", "Caddyfile:6"},
		{"etcd without endpoints", "{\n\ttokengate {\n\t\tetcd {\n\t\t\tprefix /a\n\t\t}\n\t}\n}\n", "endpoints is required"},
		{"empty endpoints", "{\n\ttokengate {\n\t\tetcd {\n\t\t\tendpoints\n\t\t}\n\t}\n}\n", "Caddyfile:4"},
		{"option twice", "{\n\ttokengate\n\ttokengate\n}\n", "more than once"},
		{"report_limit without window", "{\n\ttokengate {\n\t\treport_limit 60\n\t}\n}\n", "is not <requests>/<window>"},
		{"report_limit of zero", "{\n\ttokengate {\n\t\treport_limit 0/1h\n\t}\n}\n", "requests must be a number"},
		{"report_limit with a bad window", "{\n\ttokengate {\n\t\treport_limit 60/soon\n\t}\n}\n", "window must be a duration"},
		{"report_limit twice", "{\n\ttokengate {\n\t\treport_limit 60/1h\n\t\treport_limit 5/1m\n\t}\n}\n", "report_limit given more than once"},
		{"report_limit with two arguments", "{\n\ttokengate {\n\t\treport_limit 60 1h\n\t}\n}\n", "report_limit: expected one argument, got more"},
		{"webhook_allow_private with an argument", "{\n\ttokengate {\n\t\twebhook_allow_private yes\n\t}\n}\n", "Caddyfile:3"},
		{"webhook_allow_private twice", "{\n\ttokengate {\n\t\twebhook_allow_private\n\t\twebhook_allow_private\n\t}\n}\n", "webhook_allow_private given more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestHandlerDirectiveErrors: mistakes are reported with the line.
func TestHandlerDirectiveErrors(t *testing.T) {
	site := func(body string) string { return ":8080 {\n" + body + "}\n" }
	tests := []struct {
		name, body, want string
	}{
		{"no mode", site("\ttokengate\n"), "Caddyfile:2"},
		{"unknown mode", site("\ttokengate gateway\n"), "Caddyfile:2"},
		{"extra argument", site("\ttokengate api now\n"), "Caddyfile:2"},
		{"unknown sub-directive", site("\ttokengate api {\n\t\tscopes account\n\t}\n"), "Caddyfile:3"},
		{"repeated sub-directive", site("\ttokengate api {\n\t\tscope account\n\t\tscope organization\n\t}\n"), "Caddyfile:4"},
		{"bad scope", site("\ttokengate api {\n\t\tscope tenant\n\t}\n"), "Caddyfile:3"},
		{"bad type", site("\ttokengate api {\n\t\ttypes robots\n\t}\n"), "Caddyfile:3"},
		{"empty types", site("\ttokengate api {\n\t\ttypes\n\t}\n"), "Caddyfile:3"},
		{"forward_credentials with argument", site("\ttokengate api {\n\t\tforward_credentials yes\n\t}\n"), "Caddyfile:3"},
		{"api option on a ui route", site("\ttokengate ui {\n\t\tscope account\n\t}\n"), "Caddyfile:3"},
		{"account with organization scope", site("\ttokengate api {\n\t\tscope organization\n\t\taccount {query.a}\n\t}\n"), "account is for account-scoped routes"},
		{"identity_headers without names", site("\ttokengate api {\n\t\tidentity_headers\n\t}\n"), "Caddyfile:3"},
		{"identity_headers unknown name", site("\ttokengate api {\n\t\tidentity_headers user-id user-type email\n\t}\n"), `unknown identity header "email"`},
		{"identity_headers duplicate", site("\ttokengate api {\n\t\tidentity_headers user-id user-type role ROLE\n\t}\n"), `identity header "ROLE" named more than once`},
		{"identity_headers without user-id", site("\ttokengate api {\n\t\tidentity_headers user-type role\n\t}\n"), "user-id is missing"},
		{"identity_headers without user-type", site("\ttokengate ui {\n\t\tidentity_headers user-id\n\t}\n"), "user-type is missing"},
		{"identity_headers all and more", site("\ttokengate api {\n\t\tidentity_headers all role\n\t}\n"), `"all" names every identity header`},
		{"identity_headers twice", site("\ttokengate api {\n\t\tidentity_headers all\n\t\tidentity_headers user-id user-type\n\t}\n"), "Caddyfile:4"},
		{"identity_headers with a block", site("\ttokengate api {\n\t\tidentity_headers user-id user-type {\n\t\t}\n\t}\n"), "Caddyfile:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func FuzzHandlerDirective(f *testing.F) {
	for _, seed := range []string{
		":8080 {\n\ttokengate api {\n\t\tscope organization\n\t}\n}\n",
		":8080 {\n\ttokengate ui\n}\n",
		":8080 {\n\ttokengate api {\n\t\ttypes programmatic\n\t\tforward_credentials\n\t}\n}\n",
		":8080 {\n\ttokengate api {\n\t\tidentity_headers user-id user-type role\n\t}\n}\n",
		":8080 {\n\ttokengate ui {\n\t\tidentity_headers all\n\t}\n}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
		_, _, _ = adapter.Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	})
}

func FuzzGlobalOption(f *testing.F) {
	for _, seed := range []string{
		"{\n\ttokengate {\n\t\tcache_ttl 1m\n\t}\n}\n",
		"{\n\ttokengate {\n\t\tetcd {\n\t\t\tendpoints http://a:1\n\t\t}\n\t}\n}\n",
		"{\n\ttokengate\n}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Anything goes in; nothing may panic.
		adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
		_, _, _ = adapter.Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	})
}
