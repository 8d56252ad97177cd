package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestXcaddyStyleBuild builds Caddy the way `xcaddy build --with
// github.com/tokengate/tokengate=./tokengate` does for this unpublished
// module: a main module of its own that imports the plugin and points at
// this checkout with a replace directive. The result must carry every
// module of the plugin and its command, and none of the modules only the
// tests use (the browser driver, the OpenAPI validator).
func TestXcaddyStyleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a whole Caddy")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", `module example.com/mycaddy

go 1.26.0

require (
	github.com/caddyserver/caddy/v2 v2.11.9
	github.com/tokengate/tokengate v0.0.0-00010101000000-000000000000
)

replace github.com/tokengate/tokengate => `+root+"\n")
	write("main.go", `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

func main() { caddycmd.Main() }
`)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("go", "mod", "tidy")
	run("go", "build", "-o", "caddy", ".")
	modules := run("./caddy", "list-modules")
	for _, id := range []string{"tokengate", "http.handlers.tokengate", "http.handlers.tokengate_admin", "admin.api.tokengate"} {
		if !strings.Contains("\n"+modules, "\n"+id+"\n") {
			t.Errorf("module %s missing from the build:\n%s", id, modules)
		}
	}
	if help := run("./caddy", "tokengate", "--help"); !strings.Contains(help, "user") {
		t.Errorf("caddy tokengate --help:\n%s", help)
	}
	// What the tests alone use stays out of the build; what the gateway
	// uses is in it (so the check can fail).
	linked := run("go", "version", "-m", "caddy")
	if !strings.Contains(linked, "github.com/FastFilter/xorfilter") {
		t.Errorf("the build lacks the filter library the gateway uses:\n%s", linked)
	}
	for _, testOnly := range []string{"github.com/chromedp/", "github.com/pb33f/libopenapi"} {
		if strings.Contains(linked, testOnly) {
			t.Errorf("the build links %s, which only the tests use", testOnly)
		}
	}
}
