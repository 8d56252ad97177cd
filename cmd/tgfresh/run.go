package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
)

// config is one measurement.
type config struct {
	tokens    int
	endpoints []string // etcd; none: start an embedded one
	timeout   time.Duration
	self      []string // the command that runs a tokengate instance
	log       io.Writer
}

// result is what was measured.
type result struct {
	tokens   int
	delays   []time.Duration // revocation acknowledged by A → refused by B
	admitted int             // answers of 200 from B after it had refused a token
	timedOut int             // tokens B did not refuse within the timeout
	store    string
}

func run(cfg config) (*result, error) {
	dir, err := os.MkdirTemp("", "tgfresh-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	res := &result{tokens: cfg.tokens, store: "etcd at " + strings.Join(cfg.endpoints, ",")}
	if len(cfg.endpoints) == 0 {
		emb, err := etcdconn.StartEmbedded(etcdconn.EmbeddedConfig{Dir: filepath.Join(dir, "etcd")}, zap.NewNop())
		if err != nil {
			return nil, err
		}
		defer emb.Close()
		cfg.endpoints = []string{emb.ClientURL()}
		res.store = "embedded etcd (in the measuring process)"
	}
	// A prefix of its own, so that a shared cluster's data is untouched.
	prefix := fmt.Sprintf("/tgfresh-%d", time.Now().UnixNano())

	a, err := startInstance(cfg, dir, "a", prefix)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, err := startInstance(cfg, dir, "b", prefix)
	if err != nil {
		return nil, err
	}
	defer b.stop()

	fmt.Fprintf(cfg.log, "creating %d users through A…\n", cfg.tokens)
	if _, err := a.admin("POST", "/orgs", map[string]string{"id": "fresh", "name": "tgfresh"}); err != nil {
		return nil, err
	}
	act, err := a.admin("POST", "/orgs/fresh/accounts", map[string]string{"name": "fresh"})
	if err != nil {
		return nil, err
	}
	type credential struct{ user, token, secret string }
	creds := make([]credential, cfg.tokens)
	for i := range creds {
		out, err := a.admin("POST", "/orgs/fresh/users", map[string]any{"type": "programmatic", "level": "account",
			"account": act["id"], "role": "viewer", "name": fmt.Sprint("user-", i)})
		if err != nil {
			return nil, err
		}
		user, _ := out["user"].(map[string]any)
		tok, _ := out["token"].(map[string]any)
		creds[i] = credential{fmt.Sprint(user["id"]), fmt.Sprint(tok["id"]), fmt.Sprint(tok["secret"])}
	}
	// Every token cached on B before anything is revoked.
	for _, c := range creds {
		if status, err := b.gateway(c.secret); err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("warming B: %d %v", status, err)
		}
	}

	fmt.Fprintf(cfg.log, "revoking through A, asking B…\n")
	for _, c := range creds {
		if _, err := a.admin("DELETE", "/orgs/fresh/users/"+c.user+"/tokens/"+c.token, nil); err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			status, err := b.gateway(c.secret)
			if err != nil {
				return nil, err
			}
			if status == http.StatusUnauthorized {
				res.delays = append(res.delays, time.Since(acked))
				break
			}
			if time.Since(acked) > cfg.timeout {
				res.timedOut++
				break
			}
		}
		// Once refused, refused for good.
		if status, err := b.gateway(c.secret); err != nil || status != http.StatusUnauthorized {
			res.admitted++
		}
	}
	return res, nil
}

// print writes the figures.
func (r *result) print(w io.Writer) {
	d := slices.Clone(r.delays)
	slices.Sort(d)
	pct := func(p int) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, len(d)*p/100)]
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	mean := time.Duration(0)
	if len(d) > 0 {
		mean = sum / time.Duration(len(d))
	}
	fmt.Fprintf(w, "tgfresh: %d tokens revoked through instance A; delay until instance B refused each\n", r.tokens)
	fmt.Fprintf(w, "  p50 %s   p99 %s   max %s   mean %s\n", round(pct(50)), round(pct(99)), round(pct(100)), round(mean))
	fmt.Fprintf(w, "  admitted again after a refusal: %d   not refused in time: %d\n", r.admitted, r.timedOut)
	fmt.Fprintf(w, "  store: %s\n", r.store)
	fmt.Fprintf(w, "  machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(w, "  command: go run ./cmd/tgfresh %s\n", strings.Join(os.Args[1:], " "))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}

// instance is a tokengate process.
type instance struct {
	name     string
	cmd      *exec.Cmd
	done     chan error
	adminURL string
	siteURL  string
	logPath  string
	client   *http.Client
}

const instanceCaddyfile = `{
	admin 127.0.0.1:%d
	persist_config off
	tokengate {
		etcd {
			endpoints %s
			prefix %s
		}
	}
}

http://127.0.0.1:%d {
	route /api/* {
		tokengate api
		respond 200
	}
}
`

func startInstance(cfg config, dir, name, prefix string) (*instance, error) {
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	sitePort, err := freePort()
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(home, "Caddyfile")
	body := fmt.Sprintf(instanceCaddyfile, adminPort, strings.Join(cfg.endpoints, " "), prefix, sitePort)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(home, "log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(cfg.self[0], append(cfg.self[1:], "run", "--config", conf, "--adapter", "caddyfile")...)
	cmd.Env = append(os.Environ(), instanceEnv+"=1", "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting instance %s: %v", name, err)
	}
	in := &instance{
		name: name, cmd: cmd, done: make(chan error, 1), logPath: logPath,
		adminURL: fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort),
		siteURL:  fmt.Sprintf("http://127.0.0.1:%d", sitePort),
		client:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	go func() { in.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if status, err := in.gateway(""); err == nil && status == http.StatusUnauthorized {
			return in, nil
		}
		select {
		case err := <-in.done:
			return nil, fmt.Errorf("instance %s exited (%v); its log: %s", name, err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, fmt.Errorf("instance %s not ready after 60 s; its log: %s", name, logPath)
		}
		time.Sleep(20 * time.Millisecond) // polling interval while it starts
	}
}

// stop asks the instance to stop, then kills it if it lingers.
func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// gateway sends GET /api/x with the token (none if empty) and returns the
// status.
func (in *instance) gateway(tok string) (int, error) {
	req, _ := http.NewRequest("GET", in.siteURL+"/api/x", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// admin calls the instance's admin API on Caddy's admin endpoint.
func (in *instance) admin(method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.adminURL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s on instance %s: %d %s", method, path, in.name, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
