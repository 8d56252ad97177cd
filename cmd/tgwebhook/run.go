package main

import (
	"bytes"
	"encoding/json"
	"errors"
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
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/webhook"
)

// config is one measurement.
type config struct {
	events    int
	endpoints []string // etcd; none: start an embedded one
	timeout   time.Duration
	self      []string // the command that runs a tokengate instance
	log       io.Writer
}

// result is what was measured.
type result struct {
	events        int
	latencies     []time.Duration // event time → delivery read by the receiver
	lost          int             // events not delivered within the timeout
	repeated      int             // deliveries of an event already delivered
	badSignatures int
	store         string
}

// receiver takes deliveries, checks their signatures and notes when each
// event first arrived.
type receiver struct {
	mu      sync.Mutex
	secret  string
	arrived map[string]time.Time // by event target (the account ID)
	eventAt map[string]time.Time
	seen    map[string]bool // by webhook-id
	notify  chan struct{}
	res     *result
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id, ts := r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderTimestamp)
	var tsec int64
	fmt.Sscan(ts, &tsec)
	want, err := webhook.Sign(rc.secret, id, tsec, body)
	if err != nil || want != r.Header.Get(webhook.HeaderSignature) {
		rc.res.badSignatures++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if rc.seen[id] {
		rc.res.repeated++
		return
	}
	rc.seen[id] = true
	if p.Type != "account.create" {
		return
	}
	rc.arrived[p.Data.Target], rc.eventAt[p.Data.Target] = at, p.Data.Time
	select {
	case rc.notify <- struct{}{}:
	default:
	}
}

func run(cfg config) (*result, error) {
	dir, err := os.MkdirTemp("", "tgwebhook-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &result{events: cfg.events, store: "etcd at " + strings.Join(cfg.endpoints, ",")}
	if len(cfg.endpoints) == 0 {
		emb, err := etcdconn.StartEmbedded(etcdconn.EmbeddedConfig{Dir: filepath.Join(dir, "etcd")}, zap.NewNop())
		if err != nil {
			return nil, err
		}
		defer emb.Close()
		cfg.endpoints = []string{emb.ClientURL()}
		res.store = "embedded etcd (in the measuring process)"
	}
	prefix := fmt.Sprintf("/tgwebhook-%d", time.Now().UnixNano())

	rc := &receiver{arrived: map[string]time.Time{}, eventAt: map[string]time.Time{}, seen: map[string]bool{},
		notify: make(chan struct{}, 1), res: res}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	gw, err := startInstance(cfg, dir, prefix)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	if _, err := gw.admin("POST", "/orgs", map[string]string{"id": "bench", "name": "tgwebhook"}); err != nil {
		return nil, err
	}
	hook, err := gw.admin("POST", "/orgs/bench/webhooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hook",
		"events": []string{"account.create"}})
	if err != nil {
		return nil, err
	}
	secret, _ := hook["secret"].(string)
	rc.mu.Lock()
	rc.secret = secret
	rc.mu.Unlock()

	fmt.Fprintf(cfg.log, "writing %d events, one at a time…\n", cfg.events)
	for range cfg.events {
		act, err := gw.admin("POST", "/orgs/bench/accounts", map[string]string{"name": "bench"})
		if err != nil {
			return nil, err
		}
		id, _ := act["id"].(string)
		deadline := time.After(cfg.timeout)
	wait:
		for {
			rc.mu.Lock()
			at, ok := rc.arrived[id]
			eventAt := rc.eventAt[id]
			rc.mu.Unlock()
			if ok {
				res.latencies = append(res.latencies, at.Sub(eventAt))
				break
			}
			select {
			case <-rc.notify:
			case <-deadline:
				res.lost++
				break wait
			}
		}
	}
	return res, nil
}

// print writes the figures.
func (r *result) print(w io.Writer) {
	d := slices.Clone(r.latencies)
	slices.Sort(d)
	pct := func(p int) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, len(d)*p/100)]
	}
	fmt.Fprintf(w, "tgwebhook: %d audit events, each written then awaited; delay from the event to its delivery\n", r.events)
	fmt.Fprintf(w, "  p50 %s   p99 %s   max %s\n", round(pct(50)), round(pct(99)), round(pct(100)))
	fmt.Fprintf(w, "  lost: %d   repeated: %d   bad signatures: %d\n", r.lost, r.repeated, r.badSignatures)
	fmt.Fprintf(w, "  store: %s\n", r.store)
	fmt.Fprintf(w, "  machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(w, "  command: go run ./cmd/tgwebhook %s\n", strings.Join(os.Args[1:], " "))
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
	cmd      *exec.Cmd
	done     chan error
	adminURL string
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
		webhook_allow_private
	}
}
`

func startInstance(cfg config, dir, prefix string) (*instance, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	adminPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "Caddyfile")
	body := fmt.Sprintf(instanceCaddyfile, adminPort, strings.Join(cfg.endpoints, " "), prefix)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(cfg.self[0], append(cfg.self[1:], "run", "--config", conf, "--adapter", "caddyfile")...)
	cmd.Env = append(os.Environ(), instanceEnv+"=1", "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the gateway: %v", err)
	}
	in := &instance{cmd: cmd, done: make(chan error, 1),
		adminURL: fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort),
		client:   &http.Client{Timeout: 10 * time.Second}}
	go func() { in.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready: the admin API answers (the org does not exist yet).
		if _, err := in.admin("GET", "/orgs", nil); err == nil {
			return in, nil
		}
		select {
		case err := <-in.done:
			return nil, fmt.Errorf("the gateway exited (%v); its log: %s", err, logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, errors.New("the gateway was not ready after 60 s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval while it starts
	}
}

// stop asks the gateway to stop, then kills it if it lingers.
func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// admin calls the gateway's admin API on Caddy's admin endpoint.
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
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	return out, nil
}
