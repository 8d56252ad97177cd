package upstreams

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/etcdcluster"
)

// Names are the upstreams, in the order All starts them.
var Names = []string{"php", "rack", "node", "python", "go"}

// Upstream is a running parser server.
type Upstream struct {
	// Name is the parser: one of Names.
	Name string
	// URL is where it serves: http://127.0.0.1:port.
	URL string
	// LogPath is the server process's log; empty for go, which runs in the
	// test process.
	LogPath string
}

//go:embed php/router.php rack/server.rb node/server.js python/server.py
var scripts embed.FS

// server is how to run one parser's server process.
type server struct {
	// script is the embedded file the runtime runs.
	script string
	// runtime finds the interpreter, or says what is missing.
	runtime func() (string, error)
	// args are the interpreter's arguments, given the script's path
	// written into the test's directory and the port.
	args func(script string, port int) []string
	// env are variables added to the process's environment.
	env func() []string
}

var servers = map[string]server{
	"php": {
		script:  "php/router.php",
		runtime: lookPath("php"),
		args: func(script string, port int) []string {
			// -t: the router's own directory, which holds nothing else,
			// so that php -S never serves a file itself.
			return []string{
				"-d", "variables_order=EGPCS", "-d", "request_order=GP",
				"-d", "display_errors=stderr",
				"-S", fmt.Sprintf("127.0.0.1:%d", port), "-t", filepath.Dir(script), script,
			}
		},
	},
	"rack": {
		script: "rack/server.rb",
		runtime: func() (string, error) {
			ruby, err := exec.LookPath("ruby")
			if err != nil {
				return "", err
			}
			if out, err := exec.Command(ruby, "-e", `require "rack"; require "webrick"`).CombinedOutput(); err != nil {
				return "", fmt.Errorf("ruby cannot load rack and webrick (Debian: ruby-rack ruby-webrick): %v: %s", err, out)
			}
			return ruby, nil
		},
		args: func(script string, port int) []string { return []string{script, fmt.Sprint(port)} },
	},
	"node": {
		script: "node/server.js",
		runtime: func() (string, error) {
			node, err := exec.LookPath("node")
			if err != nil {
				return "", err
			}
			return node, checkNodeModules()
		},
		args: func(script string, port int) []string { return []string{script, fmt.Sprint(port)} },
		// The script runs from the test's directory; its packages are
		// the ones installed beside package.json.
		env: func() []string { return []string{"NODE_PATH=" + nodeModules()} },
	},
	"python": {
		script: "python/server.py",
		runtime: func() (string, error) {
			if _, err := os.Stat("/usr/bin/python3"); err == nil {
				return "/usr/bin/python3", nil
			}
			return exec.LookPath("python3")
		},
		// -I: isolated from the user's site-packages and PYTHON* variables.
		args: func(script string, port int) []string { return []string{"-I", script, fmt.Sprint(port)} },
	},
}

func lookPath(name string) func() (string, error) {
	return func() (string, error) { return exec.LookPath(name) }
}

// packageDir is this package's source directory, where node/ is.
func packageDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Dir(file)
}

func nodeModules() string { return filepath.Join(packageDir(), "node", "node_modules") }

// checkNodeModules reports a dependency in node/package.json that is not
// installed.
func checkNodeModules() error {
	manifest, err := os.ReadFile(filepath.Join(packageDir(), "node", "package.json"))
	if err != nil {
		return err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(manifest, &pkg); err != nil {
		return fmt.Errorf("reading node/package.json: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(pkg.Dependencies)) {
		if _, err := os.Stat(filepath.Join(nodeModules(), name, "package.json")); err != nil {
			return fmt.Errorf("%s not installed (npm ci --prefix internal/upstreams/node): %v", name, err)
		}
	}
	return nil
}

// Start starts the named parser; it stops when the test ends. Without the
// parser's runtime or node_modules it skips the test, or fails it when
// CI=true.
func Start(t testing.TB, name string) *Upstream {
	t.Helper()
	if name == "go" {
		return startGo(t)
	}
	srv, ok := servers[name]
	if !ok {
		t.Fatalf("unknown upstream %q (known: %s)", name, strings.Join(Names, ", "))
	}
	bin, err := srv.runtime()
	if err != nil {
		missing(t, fmt.Sprintf("upstream %s: %v", name, err))
	}
	dir := t.TempDir()
	script := filepath.Join(dir, srv.script)
	if err := writeScript(script, srv.script); err != nil {
		t.Fatal(err)
	}
	env := environ(dir)
	if srv.env != nil {
		env = append(env, srv.env()...)
	}
	// Another process may take the free port before the server binds it;
	// the server then exits, and one more port is tried.
	for attempt := 1; ; attempt++ {
		u, err := startProcess(t, name, bin, srv.args, script, env, dir, attempt)
		if err == nil {
			return u
		}
		if !errors.Is(err, errExited) || attempt == 2 {
			t.Fatal(err)
		}
		t.Logf("upstream %s: %v; trying another port", name, err)
	}
}

// All starts every parser.
func All(t testing.TB) []*Upstream {
	t.Helper()
	all := make([]*Upstream, 0, len(Names))
	for _, name := range Names {
		all = append(all, Start(t, name))
	}
	return all
}

// missing skips the test for want of a runtime, or fails it in CI, which
// must run every upstream.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func startGo(t testing.TB) *Upstream {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(goEcho))
	// net/http logs each query holding a ";"; the reading says enough.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Upstream{Name: "go", URL: srv.URL}
}

func writeScript(path, embedded string) error {
	text, err := scripts.ReadFile(embedded)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, text, 0o600)
}

// environ is the test's environment for a server process: HOME, TMPDIR
// and the XDG directories in dir, and without the variables that change
// how the runtimes load code or configure themselves, so each runs its
// parsers as installed.
func environ(dir string) []string {
	dropped := []string{"HOME=", "TMPDIR=", "XDG_", "NODE_", "PYTHON", "RUBY", "GEM_", "BUNDLE_", "PHP"}
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(dropped, func(prefix string) bool { return strings.HasPrefix(kv, prefix) }) {
			env = append(env, kv)
		}
	}
	for _, v := range []string{"HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"} {
		path := filepath.Join(dir, strings.ToLower(v))
		_ = os.MkdirAll(path, 0o700)
		env = append(env, v+"="+path)
	}
	return env
}

// errExited is a server that exited while starting.
var errExited = errors.New("exited while starting")

// startProcess makes one attempt at starting a server on a free port and
// waits until it answers.
func startProcess(t testing.TB, name, bin string, args func(string, int) []string, script string, env []string, dir string, attempt int) (*Upstream, error) {
	port := etcdcluster.FreePorts(t, 1)[0]
	logPath := filepath.Join(dir, fmt.Sprintf("%s.%d.log", name, attempt))
	proc, err := etcdcluster.StartProcess("upstream "+name, logPath, bin, args(script, port), env)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		// The whole process group: nothing a server started outlives it.
		_ = syscall.Kill(-proc.Pid(), syscall.SIGKILL)
		if err := proc.Kill(10 * time.Second); err != nil {
			t.Errorf("stopping upstream %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("upstream %s log (%s), last lines:\n%s", name, logPath, proc.LogTail(20))
		}
	})
	u := &Upstream{Name: name, URL: fmt.Sprintf("http://127.0.0.1:%d", port), LogPath: logPath}
	if err := waitReady(u, proc, 30*time.Second); err != nil {
		return nil, err
	}
	return u, nil
}

// waitReady polls, with backoff, until the server answers with its own
// reading, which also tells it from another process on the port.
func waitReady(u *Upstream, proc *etcdcluster.Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	wait := 5 * time.Millisecond
	for {
		if !proc.Running() {
			return fmt.Errorf("upstream %s %w (%v):\n%s", u.Name, errExited, proc.ExitError(), proc.LogTail(20))
		}
		reading, err := get(hc, u.URL+"/ready")
		if err == nil && reading.Parser == u.Name {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("answered as %q", reading.Parser)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("upstream %s not ready after %s: %v\n%s", u.Name, timeout, err, proc.LogTail(20))
		}
		select {
		case <-proc.Exited():
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func get(hc *http.Client, url string) (Reading, error) {
	var reading Reading
	resp, err := hc.Get(url)
	if err != nil {
		return reading, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return reading, fmt.Errorf("status %s", resp.Status)
	}
	return reading, json.NewDecoder(resp.Body).Decode(&reading)
}
