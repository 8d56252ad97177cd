package reliability

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/etcdcluster"
	"github.com/tokengate/tokengate/module/store"
)

// The lifecycle's fault matrix: start, reload to the same etcd, reload to
// a new etcd and stop, each under every fault of the store, on real etcd
// processes and real gateway processes, as leader and as follower of the
// webhook election. Every cell must finish within its bound; the test
// logs a table of what each took and the warnings an operator saw, which
// docs/operations.md reproduces.

// Bounds (docs/operations.md): a stop or reload finishes within 6 s
// whatever etcd does (Caddy's shutdown, the webhook engine's close bound
// of 3 s, the client's close); a start answers requests, or exits with a
// clear error, within dial_timeout (2 s here) and a few seconds.
const (
	matrixStopBound   = 6 * time.Second
	matrixReloadBound = 6 * time.Second
	matrixStartBound  = 2*time.Second + 6*time.Second
)

// matrixFault is one state of the store.
type matrixFault struct {
	name string
	// secure: the store is the secure cluster (TLS, etcd auth).
	secure bool
	// members the gateways are given (all when nil).
	members []int
	// empty: the gateways' prefix holds no data.
	empty bool
	// apply puts the fault in place once the gateways run; heal undoes it.
	apply, heal func(t *testing.T, c *etcdcluster.Cluster)
	// bad are the etcd lines of the config the faulty start and reloads
	// use (credentials that fail); nil: the gateways' own.
	bad func(sec *etcdcluster.Security) []string
	// usable: a token is admitted under the fault.
	usable bool
	// startWarns matches what a start under the fault logs (a warning or
	// its error) within its bound; "" when nothing need be said.
	startWarns string
}

// matrixCell is the outcome of one operation.
type matrixCell struct {
	took   time.Duration
	status string // "200", "exited: …", the /load answer …
	warns  []string
}

func TestFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many etcd and gateway processes")
	}
	plain := etcdcluster.Start(t, 3)
	// Where "reload to a new etcd" goes: a healthy single member.
	fresh := etcdcluster.Start(t, 1)
	var secure *etcdcluster.Cluster
	upstream := EchoUpstream(t)
	hc := HTTPClient(t, 10*time.Second)

	// each does op to the members given, then waits for the cluster to
	// be healthy if asked.
	each := func(op func(c *etcdcluster.Cluster, m int), healthy bool, members ...int) func(*testing.T, *etcdcluster.Cluster) {
		return func(t *testing.T, c *etcdcluster.Cluster) {
			for _, m := range members {
				op(c, m)
			}
			if healthy {
				c.WaitHealthy(30 * time.Second)
			}
		}
	}
	pause := func(members ...int) func(*testing.T, *etcdcluster.Cluster) {
		return each((*etcdcluster.Cluster).Pause, false, members...)
	}
	resume := func(members ...int) func(*testing.T, *etcdcluster.Cluster) {
		return each((*etcdcluster.Cluster).Resume, true, members...)
	}
	kill := func(members ...int) func(*testing.T, *etcdcluster.Cluster) {
		return each((*etcdcluster.Cluster).Kill, false, members...)
	}
	restart := func(members ...int) func(*testing.T, *etcdcluster.Cluster) {
		return each((*etcdcluster.Cluster).Restart, true, members...)
	}
	faults := []matrixFault{
		{name: "etcd up", usable: true},
		{name: "one member down", apply: kill(0), heal: restart(0), usable: true},
		{name: "all members down", apply: kill(0, 1, 2), heal: restart(0, 1, 2),
			startWarns: "could not check the store's schema yet: etcd does not answer"},
		{name: "its member paused", members: []int{0}, apply: pause(0), heal: resume(0),
			startWarns: "could not check the store's schema yet: etcd does not answer"},
		{name: "its member partitioned", members: []int{0}, apply: pause(1, 2), heal: resume(1, 2),
			startWarns: "could not check the store's schema yet: etcd does not answer"},
		{name: "auth failing", secure: true,
			apply: func(t *testing.T, c *etcdcluster.Cluster) {
				// The gateways' password changes under them: the token
				// they hold ends, and signing in again fails.
				ctx := ctxT(t, 10*time.Second)
				if _, err := c.Client().UserChangePassword(ctx, c.Security().Username, "changed"); err != nil {
					t.Fatal(err)
				}
			},
			heal: func(t *testing.T, c *etcdcluster.Cluster) {
				ctx := ctxT(t, 10*time.Second)
				if _, err := c.Client().UserChangePassword(ctx, c.Security().Username, c.Security().Password); err != nil {
					t.Fatal(err)
				}
			},
			bad: func(sec *etcdcluster.Security) []string {
				return []string{"username " + sec.Username, "password wrong", "tls_ca " + sec.CA,
					"tls_cert " + sec.ClientCert, "tls_key " + sec.ClientKey}
			},
			startWarns: "authentication failed"},
		{name: "TLS failing", secure: true,
			bad: func(sec *etcdcluster.Security) []string {
				// A CA that did not sign the members' certificates.
				return []string{"username " + sec.Username, "password " + sec.Password, "tls_ca " + sec.ClientCert,
					"tls_cert " + sec.ClientCert, "tls_key " + sec.ClientKey}
			},
			usable: true, startWarns: "no member answered within dial_timeout 2s"},
		{name: "empty store", empty: true, usable: true},
	}

	type row struct {
		fault string
		cells map[string]matrixCell
	}
	var table []row
	parent := t
	for i, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			c := plain
			if fault.secure {
				if secure == nil {
					// The parent's: it outlives this fault's subtest.
					secure = etcdcluster.StartWith(parent, etcdcluster.Options{Members: 3, Secure: true})
				}
				c = secure
			}
			m := newMatrixRun(t, c, fault, i, upstream, hc)
			cells := m.run(t, fresh)
			table = append(table, row{fault.name, cells})
		})
	}

	// The table docs/operations.md shows.
	var b strings.Builder
	b.WriteString("| store | start | reload, same etcd (leader / follower) | reload, new etcd (leader / follower) | stop (leader / follower) |\n|---|---|---|---|---|\n")
	secs := func(c matrixCell) string { return fmt.Sprintf("%.1f s", c.took.Seconds()) }
	for _, r := range table {
		fmt.Fprintf(&b, "| %s | %s | %s / %s | %s / %s | %s / %s |\n", r.fault, secs(r.cells["start"]),
			secs(r.cells["reload same leader"]), secs(r.cells["reload same follower"]),
			secs(r.cells["reload new leader"]), secs(r.cells["reload new follower"]),
			secs(r.cells["stop leader"]), secs(r.cells["stop follower"]))
	}
	t.Logf("fault matrix:\n%s", b.String())
	for _, r := range table {
		for _, name := range slices.Sorted(maps.Keys(r.cells)) {
			cell := r.cells[name]
			t.Logf("%s, %s: %s, %s; warnings: %q", r.fault, name, cell.took.Round(time.Millisecond), cell.status, cell.warns)
		}
	}
}

// matrixRun is one fault's row.
type matrixRun struct {
	c        *etcdcluster.Cluster
	fault    matrixFault
	good     []string // etcd lines the gateways start with
	prefixes [2]string
	tok      string // a token of the org in prefixes[0]; "" for an empty store
	upstream string
	hc       *http.Client
}

func newMatrixRun(t *testing.T, c *etcdcluster.Cluster, fault matrixFault, i int, upstream string, hc *http.Client) *matrixRun {
	m := &matrixRun{c: c, fault: fault, upstream: upstream, hc: hc}
	base := "/matrix"
	if sec := c.Security(); sec != nil {
		base = strings.TrimSuffix(sec.Prefix, "/")
		m.good = []string{"username " + sec.Username, "password " + sec.Password, "tls_ca " + sec.CA,
			"tls_cert " + sec.ClientCert, "tls_key " + sec.ClientKey}
	}
	m.prefixes = [2]string{fmt.Sprintf("%s/m%d-a", base, i), fmt.Sprintf("%s/m%d-b", base, i)}
	if !fault.empty {
		// The cluster may have healed from the last fault a moment ago:
		// its client reconnects within seconds.
		w := store.New(c.Client(), m.prefixes[0])
		deadline := time.Now().Add(30 * time.Second)
		for {
			tok, err := m.seed(t, w)
			if err == nil {
				m.tok = tok
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("seeding %s: %v", m.prefixes[0], err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return m
}

// seed writes an organization with one user, and returns its token;
// seeding again after a failure starts over (a new organization id).
func (m *matrixRun) seed(t *testing.T, w *store.Store) (string, error) {
	ctx := ctxT(t, 10*time.Second)
	org := fmt.Sprintf("acme-%d", time.Now().UnixNano())
	if _, err := w.CreateOrg(ctx, store.Org{ID: org, Name: "Acme"}, operator); err != nil {
		return "", err
	}
	a, err := w.CreateAccount(ctx, store.Account{Org: org, Name: "prod"}, operator)
	if err != nil {
		return "", err
	}
	secret, nt := newToken(t)
	if _, err := w.CreateUser(ctx, store.User{Org: org, Type: store.TypeProgrammatic, Level: store.LevelAccount,
		Account: a.ID, Role: store.RoleViewer, Name: "bot"}, &nt, operator); err != nil {
		return "", err
	}
	return secret, nil
}

func (m *matrixRun) config(name string, prefix int, extra []string) GatewayConfig {
	cfg := GatewayConfig{Name: name, Endpoints: m.c.Endpoints(), Prefix: m.prefixes[prefix], Upstream: m.upstream,
		EtcdExtra: extra, MaxStale: 2 * time.Second}
	if m.fault.members != nil {
		cfg.Endpoints = m.c.EndpointsOf(m.fault.members...)
	}
	return cfg
}

// faulty is the config a start or reload under the fault uses.
func (m *matrixRun) faulty(name string, prefix int) GatewayConfig {
	extra := m.good
	if m.fault.bad != nil {
		extra = m.fault.bad(m.c.Security())
	}
	return m.config(name, prefix, extra)
}

// pair starts a leader of the webhook election on prefix, then a follower.
func (m *matrixRun) pair(t *testing.T, prefix int) (leader, follower *Gateway) {
	leader = StartGateway(t, m.config(fmt.Sprintf("L%d", prefix), prefix, m.good))
	waitLog(t, leader, 0, "this instance leads", 15*time.Second)
	follower = StartGateway(t, m.config(fmt.Sprintf("F%d", prefix), prefix, m.good))
	waitLog(t, follower, 0, "tokengate ready", 15*time.Second)
	return leader, follower
}

func (m *matrixRun) run(t *testing.T, fresh *etcdcluster.Cluster) map[string]matrixCell {
	cells := map[string]matrixCell{}
	// Pair 0 reloads (to the same etcd, then to a new one); pair 1 stops.
	l0, f0 := m.pair(t, 0)
	l1, f1 := m.pair(t, 1)
	if m.tok != "" {
		for _, g := range []*Gateway{l0, f0} {
			if r := g.Do(context.Background(), m.hc, "before", m.tok); r.Status != http.StatusOK {
				t.Fatalf("before the fault: %s", r)
			}
		}
	}
	if m.fault.apply != nil {
		m.fault.apply(t, m.c)
	}
	healed := false
	heal := func() {
		if !healed && m.fault.heal != nil {
			m.fault.heal(t, m.c)
		}
		healed = true
	}
	defer heal()

	// Start.
	{
		start := time.Now()
		g, err := LaunchGateway(t, m.faulty("S", 0), matrixStartBound)
		cell := matrixCell{took: time.Since(start), status: "serving"}
		switch {
		case g == nil:
			t.Fatalf("start: %v", err)
		case err != nil && g.Running():
			t.Errorf("start: not serving within %s: %v", matrixStartBound, err)
			cell.status = "silent"
		case err != nil:
			cell.status = "exited"
		}
		if g.Running() && m.tok != "" {
			r := g.Do(context.Background(), m.hc, "start", m.tok)
			cell.status += fmt.Sprintf(", token %d %s", r.Status, r.Code)
			// Caddy may start the site before the tokengate app: until
			// the app's start fails and the process exits, the site
			// answers 503, or the request fails as the process exits
			// under it. An instance that then exits did not serve.
			switch {
			case r.Err != nil && exitsWithin(g, 5*time.Second),
				m.fault.usable && r.Status == http.StatusServiceUnavailable && exitsWithin(g, 5*time.Second):
				cell.status = "exited"
			case m.fault.usable && r.Status != http.StatusOK:
				t.Errorf("start: a token under %s: %s", m.fault.name, r)
			case !m.fault.usable && r.Status != http.StatusServiceUnavailable:
				t.Errorf("start: a token under %s: %s, want 503", m.fault.name, r)
			}
		}
		if m.fault.startWarns != "" {
			waitLog(t, g, 0, m.fault.startWarns, start.Add(matrixStartBound).Sub(time.Now())+100*time.Millisecond)
		}
		cell.warns = warnings(g.LogFrom(0))
		if d := time.Since(start); d > cell.took && cell.status == "exited" {
			cell.took = d
		}
		cells["start"] = cell
		g.Kill(t)
	}

	// Reload to the same etcd, as leader and as follower.
	for role, g := range map[string]*Gateway{"leader": l0, "follower": f0} {
		cells["reload same "+role] = m.reload(t, g, m.faulty(g.Name, 0))
	}
	// Reload to a new etcd, leaving the faulty one.
	for role, g := range map[string]*Gateway{"leader": l0, "follower": f0} {
		cfg := GatewayConfig{Name: g.Name, Endpoints: fresh.Endpoints(), Prefix: "/matrix-new", Upstream: m.upstream,
			MaxStale: 2 * time.Second}
		cell := m.reload(t, g, cfg)
		if !strings.HasPrefix(cell.status, "200") {
			t.Errorf("reload %s to a new etcd: %s", role, cell.status)
		}
		cells["reload new "+role] = cell
	}
	// Stop, as leader and as follower; a fault that lies in the config is
	// loaded first (the reload may be refused: the old config stays).
	for role, g := range map[string]*Gateway{"leader": l1, "follower": f1} {
		if m.fault.bad != nil {
			g.Reload(m.faulty(g.Name, 1), matrixReloadBound+5*time.Second)
		}
		from := g.LogSize()
		took, err := g.Terminate(matrixStopBound + 5*time.Second)
		if err != nil {
			t.Errorf("stop %s: %v", role, err)
		} else if took > matrixStopBound {
			t.Errorf("stop %s took %s, past %s", role, took, matrixStopBound)
		}
		cells["stop "+role] = matrixCell{took: took, status: "exited", warns: warnings(g.LogFrom(from))}
	}
	heal()
	return cells
}

// reload loads cfg into g and checks the bound; a reload may be refused
// (a config whose credentials fail), never hang.
func (m *matrixRun) reload(t *testing.T, g *Gateway, cfg GatewayConfig) matrixCell {
	t.Helper()
	from := g.LogSize()
	took, status, body := g.Reload(cfg, matrixReloadBound+10*time.Second)
	if status == 0 {
		t.Errorf("reload of %s: no answer after %s: %s", g.Name, took, body)
	} else if took > matrixReloadBound {
		t.Errorf("reload of %s took %s, past %s (%d %s)", g.Name, took, matrixReloadBound, status, body)
	}
	if !g.Running() {
		t.Errorf("reload of %s: the gateway exited", g.Name)
	}
	st := fmt.Sprint(status)
	if status != http.StatusOK {
		st += " " + body
	}
	return matrixCell{took: took, status: st, warns: warnings(g.LogFrom(from))}
}

// waitLog waits until g has logged want since offset.
func waitLog(t *testing.T, g *Gateway, offset int64, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(g.LogFrom(offset), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s has not logged %q within %s:\n%s", g.Name, want, timeout, g.LogFrom(offset))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var logMsg = regexp.MustCompile(`"level":"(warn|error)".*?"msg":"([^"]*)"`)

// warnings are the messages of the warnings and errors in log lines.
func warnings(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if mm := logMsg.FindStringSubmatch(line); mm != nil && !strings.Contains(mm[2], "HTTP/2 skipped") &&
			!strings.Contains(mm[2], "HTTP/3 skipped") {
			out = append(out, mm[1]+": "+mm[2])
		}
	}
	return out
}

// exitsWithin reports whether g's process exits within d.
func exitsWithin(g *Gateway, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for g.Running() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
