package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/measure"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// The measurement's shape; the test shortens the windows.
var (
	connections = 32
	steadyFor   = 5 * time.Second  // the steady state measured before each restart
	afterFor    = 10 * time.Second // measured second by second after it
	modes       = []bool{false, true, false, true}
)

// goalFrom is the second from which a warmed gateway should be at steady
// state: at least goalThroughput of its requests/s, p99 at most goalP99
// times.
const (
	goalFrom       = 5
	goalThroughput = 0.9
	goalP99        = 2.0
)

var operator = store.Actor{ID: "tgwarm", Type: store.ActorOperator}

// window is what the load saw in a span of time.
type window struct {
	ok, failed int         // answers of 200; anything else, or no answer
	byStatus   map[int]int // the failed, by status (0: no answer)
	seconds    float64
	p50, p99   time.Duration // of the answers of 200
}

func (w window) rate() float64 { return float64(w.ok) / w.seconds }

// restart is one restart and what followed it.
type restart struct {
	warm    bool
	steady  window        // the steadyFor before it
	took    time.Duration // SIGTERM to ready
	seconds []window      // each second of afterFor after ready
	// Per 1000 requests answered in afterFor: cache misses, and etcd
	// lookup requests (warming's too), by the gateway's metrics.
	misses, lookups float64
	// warmed is the gateway's log line on warming, if any.
	warmed string
}

// result is what was measured.
type result struct {
	tokens   int
	restarts []restart
}

// run writes cfg.Count users and tokens, starts a gateway under closed-loop
// load on them and, once every token is cached and its use recorded,
// restarts the gateway once for each of modes, measuring the steady state
// before each restart and each second after it.
func run(cfg measure.Setup) (*result, error) {
	prefix := fmt.Sprintf("/tgwarm-%d", time.Now().UnixNano())
	client, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	fmt.Fprintf(cfg.Log, "writing %d users and tokens…\n", cfg.Count)
	secrets, err := createTokens(ctx, store.New(client, prefix), cfg.Count)
	if err != nil {
		return nil, err
	}

	sitePort, err := measure.FreePort()
	if err != nil {
		return nil, err
	}
	b := &bench{log: cfg.Log, gateway: gateway{setup: cfg, prefix: prefix, sitePort: sitePort}}
	if b.in, err = b.gateway.start(true); err != nil {
		return nil, err
	}
	defer func() { b.in.Stop() }() // whichever gateway is running by then

	b.load = newDriver(fmt.Sprintf("http://127.0.0.1:%d/api/x", sitePort), secrets)
	b.load.start()
	defer b.load.halt()
	fmt.Fprintf(cfg.Log, "each token once…\n")
	if err := b.load.waitPass(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "waiting for the gateway to record every token's use…\n")
	if err := waitLastUsed(ctx, client, prefix, cfg.Count, max(cfg.Timeout, 30*time.Second)); err != nil {
		return nil, err
	}

	restarts, times, err := b.restartEach(ctx)
	if err != nil {
		return nil, err
	}
	measureRestarts(restarts, times, b.load.halt())
	return &result{tokens: cfg.Count, restarts: restarts}, nil
}

// bench is the measured gateway and the load on it.
type bench struct {
	log     io.Writer
	gateway gateway
	in      *instance // the gateway process running now
	load    *driver
}

// span is a stretch of the driver's time, [from, to).
type span struct{ from, to time.Duration }

// restartTimes places one restart in the driver's time: the steady window
// before it, and when the gateway was ready again.
type restartTimes struct {
	steady span
	ready  time.Duration
}

// restartEach restarts the gateway once for each of modes, warm_start as
// the mode says, after a steady window of steadyFor; after each it waits
// for a pass over every token, so the next begins from a steady state. It
// returns the restarts and where each fell in the driver's time, for
// measureRestarts.
func (b *bench) restartEach(ctx context.Context) ([]restart, []restartTimes, error) {
	var restarts []restart
	var times []restartTimes
	for i, warm := range modes {
		s0 := b.load.since()
		time.Sleep(steadyFor) // the steady window itself
		s1 := b.load.since()
		fmt.Fprintf(b.log, "restart %d of %d (warm_start %s)…\n", i+1, len(modes), onOff(warm))
		r, ready, err := b.restart(warm)
		if err != nil {
			return nil, nil, err
		}
		restarts = append(restarts, r)
		times = append(times, restartTimes{span{s0, s1}, ready})
		// The next steady state: every token cached again.
		b.load.next.Store(0)
		if err := b.load.waitPass(ctx); err != nil {
			return nil, nil, err
		}
	}
	return restarts, times, nil
}

// restart stops the gateway and starts it again with warm_start as warm,
// then lets the load run afterFor and reads the new gateway's metrics and
// its log line on warming. It returns the restart and when, in the
// driver's time, the gateway was ready.
func (b *bench) restart(warm bool) (restart, time.Duration, error) {
	// As a load balancer would: no requests while the gateway is
	// out of rotation, from SIGTERM until its health says ready.
	b.load.pause()
	stopped := time.Now()
	b.in.Stop()
	next, err := b.gateway.start(warm)
	if err != nil {
		return restart{}, 0, err
	}
	b.in = next
	r := restart{warm: warm, took: time.Since(stopped)}
	ready := b.load.since()
	b.load.resume()
	time.Sleep(afterFor) // the measured seconds after the restart
	r.misses, r.lookups = b.in.metrics()
	r.warmed = logLine(b.in.LogPath, "cache warm")
	return r, ready, nil
}

// measureRestarts fills in each restart's steady window and its seconds
// after ready from the samples, and turns its cache misses and etcd
// lookups into figures per 1000 requests answered in those seconds.
func measureRestarts(restarts []restart, times []restartTimes, samples []sample) {
	for i := range restarts {
		r, sp := &restarts[i], times[i]
		r.steady = measureWindow(samples, sp.steady.from, sp.steady.to)
		var answered int
		for k := range int(afterFor / time.Second) {
			from := sp.ready + time.Duration(k)*time.Second
			w := measureWindow(samples, from, from+time.Second)
			r.seconds = append(r.seconds, w)
			answered += w.ok + w.failed
		}
		if answered > 0 {
			r.misses, r.lookups = 1000*r.misses/float64(answered), 1000*r.lookups/float64(answered)
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// createTokens writes n account-level viewers of one account, a token
// each, and returns the tokens' secrets.
func createTokens(ctx context.Context, s *store.Store, n int) ([]string, error) {
	const org = "warm"
	if _, err := s.CreateOrg(ctx, store.Org{ID: org, Name: "tgwarm"}, operator); err != nil {
		return nil, err
	}
	act, err := s.CreateAccount(ctx, store.Account{Org: org, Name: "tgwarm"}, operator)
	if err != nil {
		return nil, err
	}
	secrets := make([]string, n)
	users := make([]store.User, n)
	tokens := make([]store.NewToken, n)
	now := time.Now().UTC()
	for i := range n {
		secret, err := token.Generate(token.Programmatic)
		if err != nil {
			return nil, err
		}
		secrets[i] = secret
		users[i] = store.User{ID: store.NewUserID(), Org: org, Type: store.TypeProgrammatic, Level: store.LevelAccount,
			Account: act.ID, Role: store.RoleViewer, Name: fmt.Sprint("user-", i), CreatedAt: now, CreatedBy: operator}
		tokens[i] = store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Org: org,
			User: users[i].ID, Name: "t", Hint: token.Hint(secret), CreatedAt: now, CreatedBy: operator}}
	}
	return secrets, s.Import(ctx, users, tokens)
}

// waitLastUsed waits until the gateway has written n last-use times.
func waitLastUsed(ctx context.Context, client *clientv3.Client, prefix string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(ctx, prefix+"/_lastused/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count >= int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway recorded %d of %d tokens' use in %s", resp.Count, n, timeout)
		}
		time.Sleep(200 * time.Millisecond) // polling; the gateway writes every 10 s
	}
}

// gateway starts the measured tokengate process.
type gateway struct {
	setup    measure.Setup
	prefix   string
	sitePort int
	n        int
}

// site answers 200 to what tokengate lets through.
const site = `http://127.0.0.1:%d {
	route /api/* {
		tokengate api
		respond 200
	}
}
`

type instance struct{ *measure.Instance }

func (g *gateway) start(warm bool) (*instance, error) {
	g.n++
	in, err := g.setup.StartInstance(measure.InstanceConfig{
		Name: fmt.Sprintf("gateway %d", g.n), Dir: filepath.Join(g.setup.Dir, fmt.Sprint("gateway-", g.n)), Prefix: g.prefix,
		Options: []string{fmt.Sprintf("cache_entries %d", 2*max(g.setup.Count, 1000)), "warm_start " + onOff(warm)},
		Sites:   fmt.Sprintf(site, g.sitePort),
		Ready: func(in *measure.Instance) bool {
			status, err := in.Get(in.AdminURL+"/health", "")
			return err == nil && status == http.StatusOK
		},
	})
	if err != nil {
		return nil, err
	}
	return &instance{in}, nil
}

var metricLine = regexp.MustCompile(`^(tokengate_cache_misses_total|tokengate_etcd_request_duration_seconds_count\{operation="lookup"\}) (\S+)$`)

// metrics reads the gateway's cache misses and etcd lookup requests.
func (in *instance) metrics() (misses, lookups float64) {
	resp, err := in.Client.Get(strings.TrimSuffix(in.AdminURL, "/tokengate") + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			if strings.HasPrefix(m[1], "tokengate_cache") {
				misses = v
			} else {
				lookups = v
			}
		}
	}
	return misses, lookups
}

// logLine is the first line of the log at path that holds s, trimmed.
func logLine(path, s string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// sample is one request: when it was sent (since the driver began), how
// long its answer took, and whether it was a 200.
type sample struct {
	at, took time.Duration
	ok       bool
	status   int16 // 0: no answer
}

// driver is the closed-loop load: each connection sends a request, waits
// for its answer, and sends the next.
type driver struct {
	url     string
	secrets []string
	began   time.Time
	next    atomic.Int64 // the next token of a pass in turn; past the end: at random
	passed  atomic.Int64 // requests of the pass answered
	stop    chan struct{}
	gate    atomic.Pointer[chan struct{}] // while paused: closed on resume
	wg      sync.WaitGroup
	samples [][]sample // each connection's
	halted  []sample
}

func newDriver(url string, secrets []string) *driver {
	return &driver{url: url, secrets: secrets, began: time.Now(), stop: make(chan struct{}), samples: make([][]sample, connections)}
}

func (d *driver) since() time.Duration { return time.Since(d.began) }

func (d *driver) start() {
	for i := range connections {
		d.wg.Go(func() { d.samples[i] = d.loop(i) })
	}
}

func (d *driver) loop(i int) []sample {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	var mine []sample
	pause := time.NewTimer(0)
	for {
		if gate := d.gate.Load(); gate != nil {
			select {
			case <-*gate:
			case <-d.stop:
				return mine
			}
		}
		select {
		case <-d.stop:
			return mine
		default:
		}
		n, inPass := int(d.next.Add(1))-1, true
		if n >= len(d.secrets) {
			n, inPass = rng.IntN(len(d.secrets)), false
		}
		req, _ := http.NewRequest("GET", d.url, nil)
		req.Header.Set("Authorization", "Bearer "+d.secrets[n])
		t := time.Now()
		resp, err := client.Do(req)
		ok, status := false, 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok, status = resp.StatusCode == http.StatusOK, resp.StatusCode
		}
		mine = append(mine, sample{at: t.Sub(d.began), took: time.Since(t), ok: ok, status: int16(status)})
		if inPass && ok {
			d.passed.Add(1)
		}
		if !ok {
			// The gateway is down or refusing: do not spin.
			pause.Reset(2 * time.Millisecond)
			select {
			case <-pause.C:
			case <-d.stop:
				return mine
			}
		}
	}
}

// pause holds every connection's next request until resume.
func (d *driver) pause() {
	gate := make(chan struct{})
	d.gate.Store(&gate)
}

func (d *driver) resume() {
	if gate := d.gate.Swap(nil); gate != nil {
		close(*gate)
	}
}

// waitPass waits until every token of a pass begun by next.Store(0) has
// been answered 200 once (a token that failed is not retried in the pass,
// so this waits for the pass to be handed out and mostly answered).
func (d *driver) waitPass(ctx context.Context) error {
	d.passed.Store(0)
	deadline := time.Now().Add(5 * time.Minute)
	n := int64(len(d.secrets))
	for d.next.Load() < n || d.passed.Load() < n*99/100 {
		if time.Now().After(deadline) {
			return fmt.Errorf("a pass over the tokens: %d of %d answered 200 in 5 minutes", d.passed.Load(), n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling the pass's progress
		}
	}
	return nil
}

// halt stops the load and returns every sample, in the order sent.
func (d *driver) halt() []sample {
	if d.halted != nil {
		return d.halted
	}
	close(d.stop)
	d.wg.Wait()
	all := slices.Concat(d.samples...)
	slices.SortFunc(all, func(a, b sample) int { return int(a.at - b.at) })
	d.halted = all
	return all
}

// measureWindow sums the samples sent in [from, to).
func measureWindow(all []sample, from, to time.Duration) window {
	i, _ := slices.BinarySearchFunc(all, from, func(s sample, t time.Duration) int { return int(s.at - t) })
	j, _ := slices.BinarySearchFunc(all, to, func(s sample, t time.Duration) int { return int(s.at - t) })
	w := window{seconds: (to - from).Seconds()}
	var lat []time.Duration
	for _, s := range all[i:j] {
		if s.ok {
			w.ok++
			lat = append(lat, s.took)
		} else {
			w.failed++
			if w.byStatus == nil {
				w.byStatus = map[int]int{}
			}
			w.byStatus[int(s.status)]++
		}
	}
	slices.Sort(lat)
	w.p50, w.p99 = measure.Percentile(lat, 50), measure.Percentile(lat, 99)
	return w
}

// Print writes the figures.
func (r *result) Print(w io.Writer) {
	fmt.Fprintf(w, "tgwarm: %d active tokens, %d connections; each restart against the %s before it\n",
		r.tokens, connections, steadyFor)
	for i, rs := range r.restarts {
		fmt.Fprintf(w, "\nrestart %d, warm_start %s: SIGTERM to ready %s; per 1000 requests in the %s after: %.0f cache misses, %.0f etcd lookup requests\n",
			i+1, onOff(rs.warm), rs.took.Round(time.Millisecond), afterFor, rs.misses, rs.lookups)
		if rs.warmed != "" {
			fmt.Fprintf(w, "  log: %s\n", rs.warmed)
		}
		fmt.Fprintf(w, "  %-8s %9s %8s %10s %8s %7s\n", "second", "req/s", "×steady", "p99", "×steady", "failed")
		fmt.Fprintf(w, "  %-8s %9.0f %8.2f %10s %8.2f %7d%s\n", "steady", rs.steady.rate(), 1.0, measure.Round(rs.steady.p99), 1.0,
			rs.steady.failed, statuses(rs.steady.byStatus))
		for k, s := range rs.seconds {
			fmt.Fprintf(w, "  %-8d %9.0f %8.2f %10s %8.2f %7d%s\n", k+1, s.rate(), s.rate()/rs.steady.rate(),
				measure.Round(s.p99), float64(s.p99)/float64(rs.steady.p99), s.failed, statuses(s.byStatus))
		}
		if from, ok := rs.steadyFrom(); ok {
			fmt.Fprintf(w, "  at ≥ %.1f× steady throughput and p99 ≤ %.0f× steady from second %d on\n", goalThroughput, goalP99, from)
		} else {
			fmt.Fprintf(w, "  not back at ≥ %.1f× steady throughput and p99 ≤ %.0f× steady within %s\n", goalThroughput, goalP99, afterFor)
		}
	}
	met := true
	for _, rs := range r.restarts {
		if from, ok := rs.steadyFrom(); rs.warm && (!ok || from > goalFrom) {
			met = false
		}
	}
	verdict := "met"
	if !met {
		verdict = "missed"
	}
	fmt.Fprintf(w, "\ngoal, warm_start on: steady from second %d at the latest: %s\n", goalFrom, verdict)
}

// steadyFrom is the first second from which every second measured is at
// the goal's throughput and p99.
func (rs restart) steadyFrom() (int, bool) {
	from := 0
	for k, s := range rs.seconds {
		if s.rate() < goalThroughput*rs.steady.rate() || float64(s.p99) > goalP99*float64(rs.steady.p99) {
			from = k + 1
		}
	}
	return from + 1, from < len(rs.seconds)
}

// Failed reports whether the steady state saw anything but 200s.
func (r *result) Failed() bool {
	for _, rs := range r.restarts {
		if rs.steady.failed > 0 || rs.steady.ok == 0 {
			return true
		}
	}
	return len(r.restarts) == 0
}

// statuses says what the failed requests were answered.
func statuses(by map[int]int) string {
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(by)) {
		name := strconv.Itoa(st)
		if st == 0 {
			name = "no answer"
		}
		fmt.Fprintf(&b, " %s×%d", name, by[st])
	}
	return b.String()
}
