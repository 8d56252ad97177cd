package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// homeVars are the variables that locate a user's files; Main points each
// at a directory of its own under the temporary home.
var homeVars = []struct{ name, sub string }{
	{"HOME", ""},
	{"XDG_CONFIG_HOME", ".config"},
	{"XDG_DATA_HOME", filepath.Join(".local", "share")},
	{"XDG_CACHE_HOME", ".cache"},
	{"XDG_STATE_HOME", filepath.Join(".local", "state")},
}

// goVars are the Go toolchain's settings whose defaults depend on HOME or
// XDG_CONFIG_HOME; Main pins them to the values in effect before.
var goVars = []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOENV"}

// dir is the temporary home of the running test binary, set by Main.
var dir string

// Dir returns the temporary directory Main made for HOME and the XDG
// directories, or "" when Main has not set one up.
func Dir() string { return dir }

// Main runs the tests with HOME and the XDG directories in a temporary
// directory, then removes it and exits with the tests' status.
func Main(m *testing.M) { os.Exit(Run(m.Run)) }

// Run is Main for a TestMain that does more around m.Run: it sets up the
// temporary home, calls tests, undoes the setup and returns what tests
// returned.
func Run(tests func() int) int {
	restore, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer restore()
	return tests()
}

// setup makes the temporary home and points the environment and Caddy at
// it. restore puts back what setup changed and removes the directory.
func setup() (restore func(), err error) {
	// Without a go command there is nothing to pin; tests that need one
	// fail on their own.
	goEnv, err := goSettings()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: keeping Go's settings as they are:", err)
	}
	home, err := os.MkdirTemp("", "testenv-home-")
	if err != nil {
		return nil, fmt.Errorf("making a temporary home: %v", err)
	}
	if err := makeHome(home); err != nil {
		os.RemoveAll(home)
		return nil, err
	}

	var undo []func()
	set := func(name, value string) {
		old, had := os.LookupEnv(name)
		os.Setenv(name, value)
		undo = append(undo, func() {
			if had {
				os.Setenv(name, old)
			} else {
				os.Unsetenv(name)
			}
		})
	}
	for _, name := range goVars {
		if v := goEnv[name]; v != "" {
			set(name, v)
		}
	}
	for _, v := range homeVars {
		set(v.name, filepath.Join(home, v.sub))
	}

	// Caddy computed these from the real home when it was initialized.
	oldAutosave, oldStorage := caddy.ConfigAutosavePath, caddy.DefaultStorage.Path
	caddy.ConfigAutosavePath = filepath.Join(caddy.AppConfigDir(), "autosave.json")
	caddy.DefaultStorage.Path = caddy.AppDataDir()

	prev := dir
	dir = home
	return func() {
		dir = prev
		caddy.ConfigAutosavePath, caddy.DefaultStorage.Path = oldAutosave, oldStorage
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		if err := os.RemoveAll(home); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: removing the temporary home:", err)
		}
	}, nil
}

// makeHome makes the directories homeVars name under home, with Go's
// telemetry off: the go command counts its runs under
// XDG_CONFIG_HOME/go/telemetry and may leave a process behind that writes
// there after the tests end; with the mode off it writes nothing.
func makeHome(home string) error {
	for _, v := range homeVars {
		if err := os.MkdirAll(filepath.Join(home, v.sub), 0o700); err != nil {
			return fmt.Errorf("making %s: %v", v.name, err)
		}
	}
	telemetry := filepath.Join(home, ".config", "go", "telemetry")
	if err := os.MkdirAll(telemetry, 0o700); err != nil {
		return fmt.Errorf("turning Go telemetry off: %v", err)
	}
	if err := os.WriteFile(filepath.Join(telemetry, "mode"), []byte("off"), 0o600); err != nil {
		return fmt.Errorf("turning Go telemetry off: %v", err)
	}
	return nil
}

// goSettings returns goVars as the go command sees them now. go test puts
// its own go first on the PATH of the test binary.
func goSettings() (map[string]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, append([]string{"env", "-json"}, goVars...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %v", err)
	}
	settings := map[string]string{}
	if err := json.Unmarshal(out, &settings); err != nil {
		return nil, fmt.Errorf("reading go env: %v", err)
	}
	return settings, nil
}
