package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is the etcd server the cluster runs: Debian's etcd-server
// package installs it here.
const Binary = "/usr/bin/etcd"

// Options tune a cluster; zero fields take the defaults.
type Options struct {
	// Members in the cluster. Default: 3.
	Members int
	// Raft heartbeat interval and election timeout. Defaults: 50ms and
	// 500ms, a tenth of a production setting but well above loopback
	// latency, so that a lost leader is replaced within about a second.
	Heartbeat, Election time.Duration
	// LogLevel of the members' logs. Default: info.
	LogLevel string
	// Secure runs the members with TLS (client certificates required, on
	// peer connections too) and etcd authentication: see Security.
	Secure bool
}

// Cluster is an etcd cluster whose members are processes owned by a test.
type Cluster struct {
	t     testing.TB
	bin   string
	opts  Options
	token string

	sec *Security // nil: plain

	mu      sync.Mutex
	authed  bool // authentication is on: the harness's clients use root
	members []*Member
	clients []*clientv3.Client
	shared  *clientv3.Client
}

// Member is one etcd process of the cluster.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	dataDir   string
	logPath   string
	args      []string

	proc   *Process
	paused bool
}

// Start starts an n-member cluster and waits until every member serves
// linearizable reads. The members are killed when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, Options{Members: n})
}

// StartWith starts a cluster with the given options.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := findBinary(t)
	if opts.Members <= 0 {
		opts.Members = 3
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 50 * time.Millisecond
	}
	if opts.Election == 0 {
		opts.Election = 500 * time.Millisecond
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	dir := t.TempDir()
	// A token of its own keeps members of different tests' clusters from
	// ever joining each other, should a port be reused.
	c := &Cluster{t: t, bin: bin, opts: opts, token: fmt.Sprintf("tokengate-test-%x", rand.Uint64())}

	scheme := "http"
	if opts.Secure {
		c.sec = newSecurity(t, filepath.Join(dir, "pki"))
		scheme = "https"
	}
	ports := FreePorts(t, 2*opts.Members)
	var initial []string
	for i := range opts.Members {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
		}
		m.dataDir = filepath.Join(dir, m.Name)
		m.logPath = filepath.Join(dir, m.Name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", c.token,
			"--heartbeat-interval", fmt.Sprint(opts.Heartbeat.Milliseconds()),
			"--election-timeout", fmt.Sprint(opts.Election.Milliseconds()),
			"--logger", "zap",
			"--log-outputs", "stderr",
			"--log-level", opts.LogLevel,
		}
		if c.sec != nil {
			m.args = append(m.args, c.sec.memberArgs()...)
		}
	}
	// Registered after TempDir, so it runs before the directory goes.
	t.Cleanup(c.stopAll)

	// The members find each other while starting; none is ready alone.
	for i := range c.members {
		if err := c.start(i); err != nil {
			t.Fatalf("starting etcd member %d: %v", i, err)
		}
	}
	c.WaitHealthy(30 * time.Second)
	if c.sec != nil {
		c.enableAuth()
	}
	return c
}

// findBinary returns the etcd binary, or ends the test: skipped locally,
// failed in CI, which must run these tests.
func findBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Binary); err == nil {
		return Binary
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	msg := fmt.Sprintf("etcd server binary not found at %s or on PATH; install the Debian package etcd-server to run the multi-process etcd tests", Binary)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// start launches member i's process (again), retrying while its ports are
// still held by something else.
func (c *Cluster) start(i int) error {
	m := c.members[i]
	cu, _ := url.Parse(m.ClientURL)
	pu, _ := url.Parse(m.PeerURL)
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, addr := range []string{cu.Host, pu.Host} {
			if err := waitPortFree(addr, time.Until(deadline)); err != nil {
				return fmt.Errorf("port %s stays taken: %v", addr, err)
			}
		}
		// etcd refuses flags that an ETCD_* variable also sets, and the
		// test's environment has no say in the members' settings anyway.
		p, err := StartProcess("etcd "+m.Name, m.logPath, c.bin, m.args, Environ("ETCD_"))
		if err != nil {
			return err
		}
		c.mu.Lock()
		m.proc, m.paused = p, false
		c.mu.Unlock()
		// etcd binds both listeners early, before it needs its peers;
		// an early exit means a bind failed (or worse).
		for p.Running() && !listening(cu.Host) {
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd %s does not listen on %s:\n%s", m.Name, cu.Host, p.LogTail(30))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p.Running() {
			return nil
		}
		log := p.LogTail(30)
		if !strings.Contains(log, "address already in use") || time.Now().After(deadline) {
			return fmt.Errorf("etcd %s exited at start (%v):\n%s", m.Name, p.ExitError(), log)
		}
		// Another process took the port between our check and etcd's
		// bind: wait for it and try again.
	}
}

// stopAll kills every member; it runs when the test ends.
func (c *Cluster) stopAll() {
	c.mu.Lock()
	clients := c.clients
	c.clients = nil
	c.mu.Unlock()
	for _, cl := range clients {
		cl.Close()
	}
	for _, m := range c.members {
		if m.proc == nil {
			continue
		}
		if err := m.proc.Kill(10 * time.Second); err != nil {
			c.t.Errorf("stopping etcd %s: %v", m.Name, err)
		}
	}
	if c.t.Failed() {
		for _, m := range c.members {
			c.t.Logf("etcd %s log (%s), last lines:\n%s", m.Name, m.logPath, tail(m.logPath, 15))
		}
	}
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Endpoints are the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.ClientURL
	}
	return out
}

// EndpointsOf are the client URLs of the given members.
func (c *Cluster) EndpointsOf(members ...int) []string {
	out := make([]string, len(members))
	for i, idx := range members {
		out[i] = c.members[idx].ClientURL
	}
	return out
}

// Client returns the client of the whole cluster, made on first use and
// closed when the test ends. Like any client, it may send a request to a
// paused member and wait for it: tests that pause members and must not
// wait use ClientOf with the others.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	c.mu.Lock()
	shared := c.shared
	c.mu.Unlock()
	if shared != nil {
		return shared
	}
	shared = c.ClientOf()
	c.mu.Lock()
	if c.shared == nil {
		c.shared = shared
	}
	shared = c.shared
	c.mu.Unlock()
	return shared
}

// ClientOf returns a client that talks only to the given members (all of
// them when none is given), closed when the test ends. Its keepalive
// matches tokengate's, so it fails over from a hung member as the gateway
// does.
func (c *Cluster) ClientOf(members ...int) *clientv3.Client {
	c.t.Helper()
	endpoints := c.Endpoints()
	if len(members) > 0 {
		endpoints = c.EndpointsOf(members...)
	}
	cfg := clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		PermitWithoutStream:  true,
		Logger:               zap.NewNop(),
	}
	if c.sec != nil {
		tlsCfg, err := c.sec.TLSConfig()
		if err != nil {
			c.t.Fatalf("etcd client TLS: %v", err)
		}
		cfg.TLS = tlsCfg
		c.mu.Lock()
		if c.authed {
			cfg.Username, cfg.Password = "root", c.sec.rootPassword
		}
		c.mu.Unlock()
	}
	cl, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cl)
	c.mu.Unlock()
	return cl
}

// forget closes a client made for one call.
func (c *Cluster) forget(cl *clientv3.Client) {
	c.mu.Lock()
	for i, x := range c.clients {
		if x == cl {
			c.clients = append(c.clients[:i], c.clients[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	cl.Close()
}

// Kill kills member i with SIGKILL, as a machine dying would, and waits
// until the process is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.members[i]
	if err := m.proc.Kill(10 * time.Second); err != nil {
		c.t.Fatalf("killing etcd %s: %v", m.Name, err)
	}
}

// Restart starts a killed member again, on the same ports and with the
// data it had. It does not wait for the member to rejoin: with quorum lost
// it cannot until others are back; use WaitHealthy.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.members[i]
	if m.proc.Running() {
		c.t.Fatalf("restarting etcd %s: it is still running", m.Name)
	}
	if err := c.start(i); err != nil {
		c.t.Fatalf("restarting etcd %s: %v", m.Name, err)
	}
}

// Pause stops member i with SIGSTOP: its connections stay open but nothing
// answers, as with a hung machine or a network partition. It returns once
// the process is stopped.
func (c *Cluster) Pause(i int) {
	c.t.Helper()
	c.signal(i, syscall.SIGSTOP, true)
}

// Resume continues a paused member with SIGCONT.
func (c *Cluster) Resume(i int) {
	c.t.Helper()
	c.signal(i, syscall.SIGCONT, false)
}

func (c *Cluster) signal(i int, sig syscall.Signal, stop bool) {
	c.t.Helper()
	m := c.members[i]
	if err := m.proc.Signal(sig); err != nil {
		c.t.Fatalf("signalling etcd %s: %v", m.Name, err)
	}
	if err := m.proc.WaitStopped(stop, 5*time.Second); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	m.paused = stop
	c.mu.Unlock()
}

// up reports which members run and are not paused.
func (c *Cluster) up() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m.proc != nil && m.proc.Running() && !m.paused {
			out = append(out, i)
		}
	}
	return out
}

// WaitHealthy waits until every member that runs and is not paused reports
// healthy: it has a leader and serves a linearizable read. It fails the
// test after timeout.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	if c.sec != nil {
		tlsCfg, err := c.sec.TLSConfig()
		if err != nil {
			c.t.Fatalf("etcd health TLS: %v", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: tlsCfg}
	}
	defer hc.CloseIdleConnections()
	for {
		var sick []string
		for _, i := range c.up() {
			if err := memberHealthy(hc, c.members[i]); err != nil {
				sick = append(sick, fmt.Sprintf("%s: %v", c.members[i].Name, err))
			}
		}
		if len(sick) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not healthy after %s: %s", timeout, strings.Join(sick, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memberHealthy asks a member's /health endpoint, which in etcd 3.4
// requires a leader and a linearizable read to succeed.
func memberHealthy(hc *http.Client, m *Member) error {
	if !m.proc.Running() {
		return fmt.Errorf("process exited (%v):\n%s", m.proc.ExitError(), m.proc.LogTail(20))
	}
	resp, err := hc.Get(m.ClientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// Leader returns the index of the current leader, as the running members
// see it, waiting up to timeout for them to agree on one.
func (c *Cluster) Leader(timeout time.Duration) int {
	c.t.Helper()
	cl := c.Client()
	deadline := time.Now().Add(timeout)
	for {
		// Status asks each member on a connection of its own, so a paused
		// member is simply left out.
		leader, err := c.leader(cl)
		if err == nil {
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no etcd leader after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MakeLeader hands leadership to member i, so that a test can fault the
// leader or a follower on purpose, and waits until every running member
// agrees.
func (c *Cluster) MakeLeader(i int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		leader := c.Leader(time.Until(deadline))
		if leader == i {
			return
		}
		// Only the leader can hand over its role.
		cl := c.ClientOf(leader)
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
		st, err := cl.Status(ctx, c.members[i].ClientURL)
		if err == nil {
			_, err = cl.MoveLeader(ctx, st.Header.MemberId)
		}
		cancel()
		c.forget(cl)
		if err != nil {
			if time.Now().After(deadline) {
				c.t.Fatalf("making etcd %s the leader: %v", c.members[i].Name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (c *Cluster) leader(cl *clientv3.Client) (int, error) {
	ids := map[uint64]int{}
	var leaders []uint64
	for _, i := range c.up() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := cl.Status(ctx, c.members[i].ClientURL)
		cancel()
		if err != nil {
			return -1, err
		}
		ids[st.Header.MemberId] = i
		leaders = append(leaders, st.Leader)
	}
	if len(leaders) == 0 {
		return -1, errors.New("no member is up")
	}
	for _, l := range leaders {
		if l != leaders[0] || l == 0 {
			return -1, fmt.Errorf("members disagree on the leader: %v", leaders)
		}
	}
	i, ok := ids[leaders[0]]
	if !ok {
		return -1, fmt.Errorf("leader %x is not a running member", leaders[0])
	}
	return i, nil
}

// Compact compacts the cluster's history up to its current revision, so
// that a watch resuming from an older revision gets ErrCompacted. It
// returns that revision. It talks only to members that are up, so it works
// while others are paused.
func (c *Cluster) Compact(ctx context.Context) int64 {
	c.t.Helper()
	cl := c.ClientOf(c.up()...)
	defer c.forget(cl)
	resp, err := cl.Get(ctx, "compact-probe")
	if err != nil {
		c.t.Fatalf("compact: reading the revision: %v", err)
	}
	rev := resp.Header.Revision
	if _, err := cl.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("compact at %d: %v", rev, err)
	}
	return rev
}
