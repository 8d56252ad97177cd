package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkHome fails the test unless everything that locates a user's files is
// under home, and the Go caches are not.
func checkHome(t *testing.T, home string) {
	t.Helper()
	must := func(path string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	under := []struct{ name, path string }{
		{"HOME", os.Getenv("HOME")},
		{"os.UserHomeDir", must(os.UserHomeDir())},
		{"os.UserConfigDir", must(os.UserConfigDir())},
		{"os.UserCacheDir", must(os.UserCacheDir())},
		{"caddy.AppConfigDir", caddy.AppConfigDir()},
		{"caddy.AppDataDir", caddy.AppDataDir()},
		{"caddy.ConfigAutosavePath", caddy.ConfigAutosavePath},
		{"caddy.DefaultStorage", caddy.DefaultStorage.Path},
	}
	for _, u := range under {
		if !within(u.path, home) {
			t.Errorf("%s is %s, not under %s", u.name, u.path, home)
		}
	}
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	for _, path := range strings.Fields(string(out)) {
		if within(path, home) {
			t.Errorf("go env reports %s, under the temporary home", path)
		}
	}
	out, err = exec.Command("go", "env", "GOTELEMETRY").Output()
	if mode := strings.TrimSpace(string(out)); err != nil || mode != "off" {
		t.Errorf("go env GOTELEMETRY: %q, %v; want off", mode, err)
	}
}

func TestMainSetsUpHome(t *testing.T) {
	if Dir() == "" {
		t.Fatal("Main set up no temporary home")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	if home != Dir() {
		t.Fatalf("os.UserHomeDir is %s, want %s", home, Dir())
	}
	checkHome(t, Dir())
}

func TestSetupRestores(t *testing.T) {
	outer := Dir()
	before := map[string]string{}
	for _, v := range homeVars {
		before[v.name] = os.Getenv(v.name)
	}
	autosave := caddy.ConfigAutosavePath

	restore, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	inner := Dir()
	if inner == outer || within(inner, outer) {
		t.Errorf("nested home %s is not a fresh directory", inner)
	}
	checkHome(t, inner)
	restore()

	if Dir() != outer {
		t.Errorf("Dir is %s after restore, want %s", Dir(), outer)
	}
	for name, value := range before {
		if got := os.Getenv(name); got != value {
			t.Errorf("%s is %s after restore, want %s", name, got, value)
		}
	}
	if caddy.ConfigAutosavePath != autosave {
		t.Errorf("caddy.ConfigAutosavePath is %s after restore, want %s", caddy.ConfigAutosavePath, autosave)
	}
	if _, err := os.Stat(inner); !os.IsNotExist(err) {
		t.Errorf("the temporary home is still there: %v", err)
	}
}

// Caddy autosaves every config it loads unless told not to; the copy must
// land in the temporary home.
func TestCaddyAutosavesInTempHome(t *testing.T) {
	if err := caddy.Load([]byte(`{"admin": {"disabled": true}}`), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caddy.Stop() })
	want := filepath.Join(Dir(), ".config", "caddy", "autosave.json")
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("no autosave in the temporary home: %v", err)
	}
}
