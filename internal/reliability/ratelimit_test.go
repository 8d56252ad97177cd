package reliability

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// windowCounter is an upstream that counts, by rate-limit window, the
// requests that reached it from each gateway.
type windowCounter struct {
	window time.Duration
	mu     sync.Mutex
	counts map[string]map[int64]int // gateway → window → requests
}

func (c *windowCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	win := time.Now().UnixNano() / int64(c.window)
	c.mu.Lock()
	gw := r.Header.Get("X-Gateway")
	if c.counts[gw] == nil {
		c.counts[gw] = map[int64]int{}
	}
	c.counts[gw][win]++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(upstreamSaw{UserID: r.Header.Get("X-Tokengate-User-Id"), TokenID: r.Header.Get("X-Tokengate-Token-Id")})
}

func (c *windowCounter) count(gw string, win int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[gw][win]
}

// TestRateLimitAcrossGateways: one user's budget of 100 requests a second,
// two tokengate processes on one etcd cluster. Gateway A is hammered by
// eight connections in closed loop; gateway B serves a light client of the
// same user, 10 requests a second. Over 10 windows the requests admitted
// in all are the budget within ±10% in every window, and the light client
// is not starved. Below the budget no gateway writes to etcd.
func TestRateLimitAcrossGateways(t *testing.T) {
	const limit, window, windows = 100, time.Second, 10
	f := newFixture(t)
	counter := &windowCounter{window: window, counts: map[string]map[int64]int{}}
	upstream := httptest.NewServer(counter)
	t.Cleanup(upstream.Close)
	f.upstream = upstream.URL
	a := f.gateway(t, "A", GatewayConfig{})
	b := f.gateway(t, "B", GatewayConfig{})

	ctx := ctxT(t, 2*time.Minute)
	secret, nt := newToken(t)
	u, err := f.writer.CreateUser(ctx, store.User{
		Org: f.org, Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: f.account,
		Role: store.RoleViewer, Name: "hammer", RateLimit: &store.RateLimit{Requests: limit, Window: "1s"},
	}, &nt, operator)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Gateway{a, b} {
		waitMetric(t, g, "tokengate_ratelimit_gateways", 2)
		f.admits(t, g, credential{userID: u.ID, tokenID: nt.Token.ID, secret: secret})
	}
	for _, g := range []*Gateway{a, b} {
		if v, err := g.Metric("tokengate_ratelimit_etcd_writes_total"); err != nil || v != 0 {
			t.Fatalf("gateway %s wrote to etcd for a user below its budget: %v, %v", g.Name, v, err)
		}
	}

	// Start at a window's beginning; the first two windows let the
	// gateways learn each other's demand.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window)))
	first := time.Now().UnixNano()/int64(window) + 2
	last := first + windows
	end := time.Unix(0, last*int64(window))
	send := func(g *Gateway, hc *http.Client) Result {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Gateway", g.Name)
		r := Result{Gateway: g.Name}
		resp, err := hc.Do(req)
		if err != nil {
			r.Err = err
			return r
		}
		resp.Body.Close()
		r.Status = resp.StatusCode
		return r
	}
	var wg sync.WaitGroup
	var errs sync.Map
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(end) {
				if r := send(a, f.hc); r.Err != nil || (r.Status != http.StatusOK && r.Status != http.StatusTooManyRequests) {
					errs.Store(r.String(), true)
				}
			}
		})
	}
	var lightSent, lightAdmitted int
	wg.Go(func() {
		tick := time.NewTicker(window / 10)
		defer tick.Stop()
		for now := range tick.C {
			if !now.Before(end) {
				return
			}
			r := send(b, f.hc)
			w := now.UnixNano() / int64(window)
			if w >= first && w < last {
				lightSent++
				if r.Status == http.StatusOK {
					lightAdmitted++
				}
			}
		}
	})
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Errorf("unexpected answer: %v", k); return true })

	total := 0
	for w := first; w < last; w++ {
		na, nb := counter.count("A", w), counter.count("B", w)
		t.Logf("window %d: A admitted %d, B admitted %d", w-first+1, na, nb)
		if sum := na + nb; sum < limit*90/100 || sum > limit*110/100 {
			t.Errorf("window %d: %d admitted, want %d ±10%%", w-first+1, sum, limit)
		}
		total += na + nb
	}
	if lightAdmitted*10 < lightSent*9 {
		t.Errorf("the light client on B got %d of %d requests through, want ≥ 90%%", lightAdmitted, lightSent)
	}
	writesA, _ := a.Metric("tokengate_ratelimit_etcd_writes_total")
	writesB, _ := b.Metric("tokengate_ratelimit_etcd_writes_total")
	t.Logf("%d windows: %d admitted of %d (%.1f%%); light client %d/%d; etcd writes A %v, B %v",
		windows, total, windows*limit, 100*float64(total)/float64(windows*limit), lightAdmitted, lightSent, writesA, writesB)
	// At most one transaction per publication interval (250 ms) each.
	if maxWrites := float64(windows+3) * 4; writesA > maxWrites || writesB > maxWrites {
		t.Errorf("etcd writes A %v, B %v: more than one per publication interval (%v)", writesA, writesB, maxWrites)
	}
}

// waitMetric waits until a gateway's metric has the value.
func waitMetric(t *testing.T, g *Gateway, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := g.Metric(name)
		if err == nil && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s: %s = %v (%v), want %v", g.Name, name, v, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
