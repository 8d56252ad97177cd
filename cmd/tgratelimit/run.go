package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/internal/measure"
)

// The scenario.
const (
	budget       = 100
	window       = time.Second
	heavyConns   = 8
	lightRate    = 10 // requests a second
	warmWindows  = 2
	maxDeviation = 0.10
)

// result is what was measured.
type result struct {
	windows          int
	admittedA        []int // by window
	admittedB        []int
	heavySent        int64
	lightSent        int
	lightAdmitted    int
	lightLatency     []time.Duration // the light client\'s requests, sorted
	writesA, writesB float64
	errors           int64
	duration         time.Duration
}

// counter is the upstream: it counts, by window, what each gateway let
// through.
type counter struct {
	mu     sync.Mutex
	counts map[string]map[int64]int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	win := time.Now().UnixNano() / int64(window)
	gw := r.Header.Get("X-Gateway")
	c.mu.Lock()
	if c.counts[gw] == nil {
		c.counts[gw] = map[int64]int{}
	}
	c.counts[gw][win]++
	c.mu.Unlock()
}

func (c *counter) count(gw string, win int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[gw][win]
}

// run starts gateways A and B on one store in front of a counting upstream,
// gives one user a budget shared by both, and measures, window by window,
// what each gateway lets through while A is hammered and B serves a light
// client.
func run(cfg measure.Setup) (*result, error) {
	up := &counter{counts: map[string]map[int64]int{}}
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	prefix := fmt.Sprintf("/tgratelimit-%d", time.Now().UnixNano())

	a, err := startInstance(cfg, "A", prefix, upstream.URL)
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	b, err := startInstance(cfg, "B", prefix, upstream.URL)
	if err != nil {
		return nil, err
	}
	defer b.Stop()

	fmt.Fprintf(cfg.Log, "creating a user with a budget of %d per %s through A…\n", budget, window)
	secret, err := createLimitedUser(a)
	if err != nil {
		return nil, err
	}
	// Both gateways see each other before the clock starts.
	if err := waitForEachOther(a, b, cfg.Timeout); err != nil {
		return nil, err
	}

	res := &result{windows: cfg.Count}
	l := offerLoad(cfg, a, b, secret, res)
	for w := l.first; w < l.last; w++ {
		res.admittedA = append(res.admittedA, up.count("A", w))
		res.admittedB = append(res.admittedB, up.count("B", w))
	}
	res.writesA, _ = a.metric("tokengate_ratelimit_etcd_writes_total")
	res.writesB, _ = b.metric("tokengate_ratelimit_etcd_writes_total")
	return res, nil
}

// createLimitedUser creates, through a's admin API, an org, an account and
// a programmatic viewer of it with a rate limit of budget per window, and
// returns its token's secret.
func createLimitedUser(a *instance) (string, error) {
	if _, err := a.Admin("POST", "/orgs", map[string]string{"id": "limits", "name": "tgratelimit"}); err != nil {
		return "", err
	}
	act, err := a.Admin("POST", "/orgs/limits/accounts", map[string]string{"name": "limits"})
	if err != nil {
		return "", err
	}
	out, err := a.Admin("POST", "/orgs/limits/users", map[string]any{"type": "programmatic", "level": "account",
		"account": act["id"], "role": "viewer", "name": "hammer",
		"rate_limit": map[string]any{"requests": budget, "window": window.String()}})
	if err != nil {
		return "", err
	}
	tok, _ := out["token"].(map[string]any)
	return fmt.Sprint(tok["secret"]), nil
}

// waitForEachOther waits, at most timeout, until each gateway's metrics
// count two gateways sharing budgets.
func waitForEachOther(a, b *instance, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ga, _ := a.metric("tokengate_ratelimit_gateways")
		gb, _ := b.metric("tokengate_ratelimit_gateways")
		if ga == 2 && gb == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateways do not see each other: A counts %v, B %v", ga, gb)
		}
		time.Sleep(20 * time.Millisecond) // polling while they register
	}
}

// load is the traffic of one measurement: warmWindows windows not counted,
// then the counted windows [first, last); it stops at end, when last begins.
type load struct {
	secret      string
	first, last int64
	end         time.Time
	heavySent   atomic.Int64 // A's requests sent in the counted windows
	errs        atomic.Int64 // answers neither 200 nor 429, or none
}

// offerLoad starts at a window's start and, until the counted windows
// end, hammers A from heavyConns connections in a closed loop while a
// light client sends B lightRate requests a second. It records in res
// what was sent and how the light client fared.
func offerLoad(cfg measure.Setup, a, b *instance, secret string, res *result) *load {
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window))) // to a window's start
	l := &load{secret: secret}
	l.first = time.Now().UnixNano()/int64(window) + warmWindows
	l.last = l.first + int64(cfg.Count)
	l.end = time.Unix(0, l.last*int64(window))
	fmt.Fprintf(cfg.Log, "A hammered by %d connections, B serving %d requests a second, for %d windows…\n",
		heavyConns, lightRate, warmWindows+cfg.Count)
	started := time.Now()
	var wg sync.WaitGroup
	for range heavyConns {
		wg.Go(func() { l.hammer(a) })
	}
	wg.Go(func() { l.light(b, res) })
	wg.Wait()
	res.duration = time.Since(started)
	slices.Sort(res.lightLatency)
	res.heavySent, res.errors = l.heavySent.Load(), l.errs.Load()
	return l
}

// counted reports whether t falls in a counted window.
func (l *load) counted(t time.Time) bool {
	w := t.UnixNano() / int64(window)
	return w >= l.first && w < l.last
}

// note counts an answer that is neither 200 nor 429, or no answer.
func (l *load) note(status int, err error) {
	if err != nil || (status != http.StatusOK && status != http.StatusTooManyRequests) {
		l.errs.Add(1)
	}
}

// hammer is one of A's connections: it sends the next request as soon as
// the last is answered, until the load ends.
func (l *load) hammer(a *instance) {
	for time.Now().Before(l.end) {
		status, err := a.get(l.secret)
		l.note(status, err)
		if l.counted(time.Now()) {
			l.heavySent.Add(1)
		}
	}
}

// light is B's client: lightRate requests a second, each timed, until the
// load ends. Only it writes res's light-client figures.
func (l *load) light(b *instance, res *result) {
	tick := time.NewTicker(time.Second / lightRate)
	defer tick.Stop()
	for now := range tick.C {
		if !now.Before(l.end) {
			return
		}
		sent := time.Now()
		status, err := b.get(l.secret)
		took := time.Since(sent)
		l.note(status, err)
		if l.counted(now) {
			res.lightLatency = append(res.lightLatency, took)
			res.lightSent++
			if status == http.StatusOK {
				res.lightAdmitted++
			}
		}
	}
}

// worst is the window whose total is farthest from the budget, and that
// total.
func (r *result) worst() (int, int) {
	at, total := 0, budget
	for i := range r.admittedA {
		t := r.admittedA[i] + r.admittedB[i]
		if abs(t-budget) >= abs(total-budget) {
			at, total = i, t
		}
	}
	return at, total
}

func abs(x int) int { return max(x, -x) }

// Print writes the figures.
func (r *result) Print(w io.Writer) {
	sum := 0
	for i := range r.admittedA {
		sum += r.admittedA[i] + r.admittedB[i]
	}
	at, worst := r.worst()
	fmt.Fprintf(w, "tgratelimit: budget %d per %s shared by gateways A and B; %d windows counted\n", budget, window, r.windows)
	fmt.Fprintf(w, "  admitted A by window: %v\n", r.admittedA)
	fmt.Fprintf(w, "  admitted B by window: %v\n", r.admittedB)
	fmt.Fprintf(w, "  total %d of %d (%+.1f%%); farthest window %d: %d (%+.1f%%); target ±%.0f%% in every window\n",
		sum, r.windows*budget, 100*float64(sum-r.windows*budget)/float64(r.windows*budget),
		at+1, worst, 100*float64(worst-budget)/budget, 100*maxDeviation)
	fmt.Fprintf(w, "  A offered %.0f requests/s (8 connections, closed loop); light client on B: %d of %d admitted\n",
		float64(r.heavySent)/float64(r.windows), r.lightAdmitted, r.lightSent)
	fmt.Fprintf(w, "  light client latency p50 %s   p99 %s (a decision never waits on etcd)\n",
		measure.Round(measure.Percentile(r.lightLatency, 50)), measure.Round(measure.Percentile(r.lightLatency, 99)))
	fmt.Fprintf(w, "  etcd writes to share the budget: A %.0f, B %.0f in %s (%.1f/s and %.1f/s)\n",
		r.writesA, r.writesB, r.duration.Round(100*time.Millisecond),
		r.writesA/r.duration.Seconds(), r.writesB/r.duration.Seconds())
	fmt.Fprintf(w, "  unexpected answers: %d\n", r.errors)
}

// Failed reports whether a window strayed more than ±10% from the budget,
// the light client was starved, or an answer was neither 200 nor 429.
func (r *result) Failed() bool {
	_, worst := r.worst()
	return float64(abs(worst-budget)) > maxDeviation*budget || r.lightAdmitted*10 < r.lightSent*9 || r.errors > 0
}

// instance is A or B: a tokengate process and its site.
type instance struct {
	*measure.Instance
	siteURL string
	metrics string
}

// site passes /api/* requests tokengate admits to the counting upstream,
// saying which gateway they came through.
const site = `http://127.0.0.1:%d {
	route /api/* {
		tokengate api
		reverse_proxy %s {
			header_up X-Gateway %s
		}
	}
}
`

func startInstance(cfg measure.Setup, name, prefix, upstream string) (*instance, error) {
	sitePort, err := measure.FreePort()
	if err != nil {
		return nil, err
	}
	in := &instance{siteURL: fmt.Sprintf("http://127.0.0.1:%d", sitePort)}
	in.Instance, err = cfg.StartInstance(measure.InstanceConfig{
		Name: "instance " + name, Dir: filepath.Join(cfg.Dir, name), Prefix: prefix,
		Sites:  fmt.Sprintf(site, sitePort, strings.TrimPrefix(upstream, "http://"), name),
		Client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: heavyConns * 2}},
		Ready: func(started *measure.Instance) bool {
			in.Instance = started
			status, err := in.get("")
			return err == nil && status == http.StatusUnauthorized
		},
	})
	if err != nil {
		return nil, err
	}
	in.metrics = strings.TrimSuffix(in.AdminURL, "/tokengate") + "/metrics"
	return in, nil
}

// get sends GET /api/x with the token (none if empty) and returns the
// status.
func (in *instance) get(tok string) (int, error) {
	return in.Get(in.siteURL+"/api/x", tok)
}

// metric reads one unlabelled value from the instance's /metrics.
func (in *instance) metric(name string) (float64, error) {
	resp, err := in.Client.Get(in.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", in.metrics, name)
}
