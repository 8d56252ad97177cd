package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/etcdcluster"
)

// The tokengate binary, built once per test binary.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary returns the tokengate binary built from this module's
// ./cmd/tokengate, building it on first use. The build is not a race build,
// whatever the tests are: the instances' timing should be production's.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() { built.bin, built.err = buildBinary() })
	if built.err != nil {
		t.Fatalf("building tokengate: %v", built.err)
	}
	return built.bin
}

func buildBinary() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// The module root is where go.mod is, seen from the test's directory.
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	dir, err := os.MkdirTemp("", "tokengate-bin-")
	if err != nil {
		return "", err
	}
	built.dir = dir
	bin := filepath.Join(dir, "tokengate")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/tokengate")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tokengate: %v\n%s", err, out)
	}
	return bin, nil
}

// Main runs a package's tests and then removes the binary Binary built.
// Call it from TestMain: os.Exit(reliability.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// GatewayConfig describes one tokengate instance.
type GatewayConfig struct {
	// Name appears in logs and failure messages.
	Name string
	// Endpoints of the etcd members the instance talks to.
	Endpoints []string
	// Prefix of tokengate's keys in etcd.
	Prefix string
	// Cache settings; zero leaves tokengate's defaults.
	CacheTTL, MaxStale, NegativeTTL time.Duration
	// Upstream is the URL requests that pass are proxied to.
	Upstream string
	// WebhookAllowPrivate lets the instance's webhooks reach receivers on
	// loopback (a test's).
	WebhookAllowPrivate bool
	// EtcdExtra are more lines of the etcd block (credentials, TLS files).
	EtcdExtra []string
}

// Gateway is a running tokengate process: Caddy with the tokengate app on
// the cluster, and one site whose /api/* routes pass `tokengate api` and
// go to the upstream.
type Gateway struct {
	Name string
	// URL is the site, e.g. http://127.0.0.1:41234.
	URL string
	// Admin is Caddy's admin endpoint, e.g. localhost:41235.
	Admin string

	proc            *etcdcluster.Process
	port, adminPort int
	cfg             GatewayConfig // as loaded last
}

const caddyfileTemplate = `{
	admin localhost:{{ADMIN}}
	persist_config off
	log {
		output stderr
		format json
		level INFO
	}
	tokengate {
		etcd {
			endpoints {{ENDPOINTS}}
			prefix {{PREFIX}}
			dial_timeout 2s
{{ETCDEXTRA}}		}
{{CACHE}}	}
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}
`

// StartGateway starts an instance and waits until it answers requests. It
// is killed when the test ends; its output goes to a file in the test's
// temporary directory, and its last lines are shown when the test fails.
func StartGateway(t testing.TB, cfg GatewayConfig) *Gateway {
	t.Helper()
	g, err := LaunchGateway(t, cfg, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// LaunchGateway is StartGateway for a start that may fail: it returns the
// instance (killed when the test ends) and why it did not answer within
// timeout, or exited.
func LaunchGateway(t testing.TB, cfg GatewayConfig, timeout time.Duration) (*Gateway, error) {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		g, err := startGateway(t, bin, dir, cfg, timeout)
		// The free ports may have been taken before Caddy bound them:
		// try others.
		if err == nil || !strings.Contains(err.Error(), "address already in use") || attempt == 3 {
			return g, err
		}
	}
}

// caddyfile renders the instance's Caddyfile for cfg.
func (g *Gateway) caddyfile(cfg GatewayConfig) string {
	var cache strings.Builder
	if cfg.WebhookAllowPrivate {
		cache.WriteString("\t\twebhook_allow_private\n")
	}
	for _, s := range []struct {
		name string
		d    time.Duration
	}{{"cache_ttl", cfg.CacheTTL}, {"max_stale", cfg.MaxStale}, {"negative_ttl", cfg.NegativeTTL}} {
		if s.d > 0 {
			fmt.Fprintf(&cache, "\t\t%s %s\n", s.name, s.d)
		}
	}
	var extra strings.Builder
	for _, line := range cfg.EtcdExtra {
		fmt.Fprintf(&extra, "\t\t\t%s\n", line)
	}
	return strings.NewReplacer(
		"{{ETCDEXTRA}}", extra.String(),
		"{{ADMIN}}", fmt.Sprint(g.adminPort),
		"{{ENDPOINTS}}", strings.Join(cfg.Endpoints, " "),
		"{{PREFIX}}", cfg.Prefix,
		"{{CACHE}}", cache.String(),
		"{{PORT}}", fmt.Sprint(g.port),
		"{{UPSTREAM}}", cfg.Upstream,
	).Replace(caddyfileTemplate)
}

// startGateway makes one attempt at starting an instance on fresh ports.
func startGateway(t testing.TB, bin, dir string, cfg GatewayConfig, timeout time.Duration) (*Gateway, error) {
	ports := etcdcluster.FreePorts(t, 2)
	g := &Gateway{
		Name:      cfg.Name,
		URL:       fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		Admin:     fmt.Sprintf("localhost:%d", ports[1]),
		port:      ports[0],
		adminPort: ports[1],
		cfg:       cfg,
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(g.caddyfile(cfg)), 0o600); err != nil {
		return nil, err
	}
	// Caddy keeps state under the XDG directories; they are the test's.
	env := etcdcluster.Environ("XDG_",
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	proc, err := etcdcluster.StartProcess("tokengate "+cfg.Name, filepath.Join(dir, "tokengate.log"), bin,
		[]string{"run", "--config", path, "--adapter", "caddyfile"}, env)
	if err != nil {
		return nil, err
	}
	g.proc = proc
	t.Cleanup(func() {
		if err := proc.Kill(10 * time.Second); err != nil {
			t.Errorf("stopping %s: %v", g.Name, err)
		}
		if t.Failed() {
			t.Logf("tokengate %s log (%s), last lines:\n%s", g.Name, proc.LogPath, proc.LogTail(25))
		}
	})
	return g, g.waitReady(timeout)
}

// Reload loads cfg (its name, prefix and upstream as at start when left
// empty) through the admin endpoint's /load, forced even when unchanged,
// as `caddy reload --force` does. It returns how long /load took to
// answer, and its status and body (status 0: no answer within timeout).
func (g *Gateway) Reload(cfg GatewayConfig, timeout time.Duration) (took time.Duration, status int, body string) {
	if cfg.Prefix == "" {
		cfg.Prefix = g.cfg.Prefix
	}
	if cfg.Upstream == "" {
		cfg.Upstream = g.cfg.Upstream
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+g.Admin+"/load", strings.NewReader(g.caddyfile(cfg)))
	if err != nil {
		return 0, 0, err.Error()
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	hc := &http.Client{Timeout: timeout}
	defer hc.CloseIdleConnections()
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return time.Since(start), 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	took = time.Since(start)
	if resp.StatusCode == http.StatusOK {
		g.cfg = cfg
	}
	return took, resp.StatusCode, strings.TrimSpace(string(b))
}

// Terminate sends SIGTERM, as systemd and Kubernetes do, and waits at most
// timeout for the instance to exit; it returns how long that took.
func (g *Gateway) Terminate(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := g.proc.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-g.proc.Exited():
		return time.Since(start), nil
	case <-time.After(timeout):
		return time.Since(start), fmt.Errorf("%s still running %s after SIGTERM", g.Name, timeout)
	}
}

// Running reports whether the instance's process has not exited.
func (g *Gateway) Running() bool { return g.proc.Running() }

// LogSize is how much the instance has logged so far: LogFrom(LogSize())
// later reads what it logged meanwhile.
func (g *Gateway) LogSize() int64 {
	fi, err := os.Stat(g.proc.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogFrom returns what the instance logged from offset on.
func (g *Gateway) LogFrom(offset int64) string {
	b, err := os.ReadFile(g.proc.LogPath)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// waitReady polls until the site answers a request without a token with
// 401, which means Caddy serves and the handler runs.
func (g *Gateway) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for {
		if !g.proc.Running() {
			return fmt.Errorf("tokengate %s exited (%v):\n%s", g.Name, g.proc.ExitError(), g.proc.LogTail(30))
		}
		resp, err := hc.Get(g.URL + "/api/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tokengate %s not ready after %s (last: %v):\n%s", g.Name, timeout, err, g.proc.LogTail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the instance with SIGKILL.
func (g *Gateway) Kill(t testing.TB) {
	t.Helper()
	if err := g.proc.Kill(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// LogPath is the file holding the instance's output.
func (g *Gateway) LogPath() string { return g.proc.LogPath }

// Metric reads an unlabelled counter or gauge, e.g.
// tokengate_watch_flushes_total, from the instance's /metrics on Caddy's
// admin endpoint.
func (g *Gateway) Metric(name string) (float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d %s", resp.StatusCode, body)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// Result is the outcome of one request through a gateway.
type Result struct {
	Gateway    string
	Start, End time.Time
	// Status is the HTTP status, 0 when the request itself failed (Err).
	Status int
	// Code is the error code of a refusal.
	Code string
	// TokenID and UserID are what the upstream was told, for admitted
	// requests.
	TokenID, UserID string
	Err             error
}

// Do sends GET /api/<path> with a bearer token (none when empty).
func (g *Gateway) Do(ctx context.Context, hc *http.Client, path, tok string) Result {
	r := Result{Gateway: g.Name, Start: time.Now()}
	defer func() { r.End = time.Now() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/api/"+path, nil)
	if err != nil {
		r.Err = err
		return r
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		r.Err = err
		r.End = time.Now()
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r.End = time.Now()
	if err != nil {
		r.Err = err
		return r
	}
	r.Status = resp.StatusCode
	if resp.StatusCode == http.StatusOK {
		var seen upstreamSaw
		if err := json.Unmarshal(body, &seen); err != nil {
			r.Err = fmt.Errorf("upstream answer %q: %v", body, err)
		}
		r.TokenID, r.UserID = seen.TokenID, seen.UserID
		return r
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		r.Err = fmt.Errorf("error body %q: %v", body, err)
	}
	r.Code = e.Error.Code
	return r
}

// String describes the result for failure messages.
func (r Result) String() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%s: error %v", r.Gateway, r.Err)
	case r.Status == http.StatusOK:
		return fmt.Sprintf("%s: 200 user=%s token=%s", r.Gateway, r.UserID, r.TokenID)
	}
	return fmt.Sprintf("%s: %d %s", r.Gateway, r.Status, r.Code)
}

// upstreamSaw is what the echo upstream reports.
type upstreamSaw struct {
	UserID  string `json:"user_id"`
	TokenID string `json:"token_id"`
}

// EchoUpstream starts an upstream in the test process that answers with
// the identity tokengate tagged the request with. It returns its URL.
func EchoUpstream(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(upstreamSaw{
			UserID:  r.Header.Get("X-Tokengate-User-Id"),
			TokenID: r.Header.Get("X-Tokengate-Token-Id"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// HTTPClient is a client for sending load to gateways: connections are
// reused, and a request waits at most timeout.
func HTTPClient(t testing.TB, timeout time.Duration) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}
