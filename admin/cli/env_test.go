package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/internal/testenv"
)

// binary is the tokengate binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(asCaddyEnv) != "" {
		// Started by runAsCaddy: this test binary is a Caddy build with
		// the plugin, as xcaddy makes one, and its arguments are Caddy's.
		caddycmd.Main()
		os.Exit(0)
	}
	os.Exit(testenv.Run(func() int { return buildAndRun(m) }))
}

// asCaddyEnv, set in its environment, makes the test binary run as Caddy.
const asCaddyEnv = "TOKENGATE_CLI_TEST_AS_CADDY"

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tokengate-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "making a directory for the binary:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "tokengate")
	build := exec.Command("go", "build", "-o", binary, "./cmd/tokengate")
	build.Dir = filepath.Join("..", "..") // the module root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the tokengate binary: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// env is a running Caddy with the admin API on its admin endpoint and as
// tokengate_admin under /admin/ on a site, over a real etcd.
type env struct {
	adminAddr string // host:port of Caddy's admin endpoint
	mountURL  string // base URL of the tokengate_admin mount
	siteURL   string // base URL of the site: /api/* is behind the gateway
	logFile   string
}

const envCaddyfile = `{
	admin 127.0.0.1:{{ADMIN}}
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
		webhook_allow_private
	}
	log {
		output file {{LOG}}
		level DEBUG
	}
}

http://127.0.0.1:{{PORT}} {
	log
	handle_path /admin/* {
		tokengate_admin
	}
	route /api/* {
		tokengate api
		respond "ok {http.auth.user.id}"
	}
}
`

// startEnv starts the instance; it stops when the test ends.
func startEnv(t *testing.T) *env {
	t.Helper()
	etcd := etcdtest.Start(t)
	adminPort, port := caddytest.FreePort(t), caddytest.FreePort(t)
	e := &env{
		adminAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
		mountURL:  fmt.Sprintf("http://127.0.0.1:%d/admin", port),
		siteURL:   fmt.Sprintf("http://127.0.0.1:%d", port),
		logFile:   filepath.Join(t.TempDir(), "caddy.log"),
	}
	caddytest.Load(t, envCaddyfile, map[string]string{"ADMIN": fmt.Sprint(adminPort), "ETCD": etcd.Endpoint(),
		"LOG": e.logFile, "PORT": fmt.Sprint(port)})
	return e
}

// result is what one run of the binary did.
type result struct {
	args           []string
	stdout, stderr string
	status         int
}

// run runs the tokengate binary with args and the given extra environment
// (TOKENGATE_TOKEN never comes from the test's own environment). It fails
// the test if the token given in the environment shows up in the output.
func run(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return runProgram(t, binary, extraEnv, args...)
}

// runAsCaddy runs args as a Caddy build with the plugin would: that build
// takes the admin commands under `tokengate` only, and knows nothing of the
// tokengate binary's short form.
func runAsCaddy(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return runProgram(t, os.Args[0], append([]string{asCaddyEnv + "=1"}, extraEnv...), args...)
}

// runProgram runs program with its own HOME and XDG directories, so that
// nothing it might write lands in the user's.
func runProgram(t *testing.T, program string, extraEnv []string, args ...string) result {
	t.Helper()
	return runProgramInput(t, program, nil, extraEnv, args...)
}

// runProgramInput is runProgram with stdin as the program's standard input
// (none when nil).
func runProgramInput(t *testing.T, program string, stdin io.Reader, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	home := t.TempDir()
	cmd.Env = append(cleanEnviron(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.status = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	for _, kv := range extraEnv {
		if tok, ok := strings.CutPrefix(kv, "TOKENGATE_TOKEN="); ok && strings.TrimSpace(tok) != "" &&
			(strings.Contains(r.stdout, tok) || strings.Contains(r.stderr, tok)) {
			t.Errorf("%v printed the TOKENGATE_TOKEN it was given", args)
		}
	}
	return r
}

// cleanEnviron is the test's environment without anything that would
// point the binary elsewhere or hand it a token.
func cleanEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENGATE_TOKEN=") && !strings.HasPrefix(kv, "CADDY_ADMIN=") &&
			!strings.HasPrefix(kv, asCaddyEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// op runs a command as the operator, on Caddy's admin endpoint.
func (e *env) op(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, append(args, "--address", e.adminAddr)...)
}

// as runs a command through the tokengate_admin mount with tok in
// TOKENGATE_TOKEN.
func (e *env) as(t *testing.T, tok string, args ...string) result {
	t.Helper()
	return run(t, []string{"TOKENGATE_TOKEN=" + tok}, append(args, "--url", e.mountURL)...)
}

// failed fails the test unless the run ended with the status of every
// failure, Caddy's caddy.ExitCodeFailedStartup.
func (r result) failed(t *testing.T) result {
	t.Helper()
	return r.must(t, caddy.ExitCodeFailedStartup)
}

// must fails the test unless the run ended with status.
func (r result) must(t *testing.T, status int) result {
	t.Helper()
	if r.status != status {
		t.Fatalf("%v: exit status %d, want %d\nstdout: %s\nstderr: %s", r.args, r.status, status, r.stdout, r.stderr)
	}
	return r
}

// ok fails the test unless the run succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	return r.must(t, caddy.ExitCodeSuccess)
}

// json decodes stdout.
func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%v: stdout is not a JSON object: %v\n%s", r.args, err, r.stdout)
	}
	return v
}

// field is the string at path in the JSON on stdout.
func (r result) field(t *testing.T, path ...string) string {
	t.Helper()
	var v any = r.json(t)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %s", path, r.stdout)
		}
		v = m[p]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v in %s is not a string", path, r.stdout)
	}
	return s
}

// list is the JSON list named key on stdout.
func (r result) list(t *testing.T, key string) []any {
	t.Helper()
	items, ok := r.json(t)[key].([]any)
	if !ok {
		t.Fatalf("no list %q in %s", key, r.stdout)
	}
	return items
}

// recorder is a stand-in for the admin API that records what it was sent
// and answers every request with the same status and body.
type recorder struct {
	URL string

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

func startRecorder(t *testing.T, status int, body string) *recorder {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone(), body: data})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// address is the recorder as an --address.
func (rec *recorder) address() string { return strings.TrimPrefix(rec.URL, "http://") }

func (rec *recorder) received() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.requests...)
}
