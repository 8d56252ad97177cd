package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/etcdtest"
)

const prefix = "/tg/ratelimit/"

func newLimiter(t testing.TB, client *clientv3.Client, cfg Config) *Limiter {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 2 * time.Second
	}
	l := New(client, prefix, cfg)
	t.Cleanup(l.Close)
	return l
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clock is a settable clock for tests that step through windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestOneGatewayKeepsTheBudget(t *testing.T) {
	srv := etcdtest.Start(t)
	c := startClock()
	l := newLimiter(t, srv.Client(), Config{now: c.now})
	waitFor(t, 5*time.Second, "registered", func() bool { return l.Stats().Registered })
	for window := range 3 {
		for i := range 10 {
			d := l.Allow("u-1", 10, time.Minute)
			if !d.Allowed || d.Remaining != int64(9-i) || d.Requests != 10 || d.Window != time.Minute {
				t.Fatalf("window %d, request %d: %+v", window, i, d)
			}
		}
		d := l.Allow("u-1", 10, time.Minute)
		if d.Allowed || d.Remaining != 0 || d.Reset != time.Minute {
			t.Fatalf("window %d, request 11: %+v, want refused, reset in 1m", window, d)
		}
		c.add(15 * time.Second)
		if d := l.Allow("u-1", 10, time.Minute); d.Allowed || d.Reset != 45*time.Second {
			t.Fatalf("15s later: %+v, want refused, reset in 45s", d)
		}
		c.add(45 * time.Second)
	}
	// Other users have budgets of their own.
	if d := l.Allow("u-2", 1, time.Second); !d.Allowed {
		t.Fatalf("another user: %+v", d)
	}
	// A changed budget takes effect at once.
	if d := l.Allow("u-1", 12, time.Minute); !d.Allowed || d.Remaining != 11 {
		t.Fatalf("raised budget: %+v", d)
	}
}

func TestUsersBelowTheirLimitCostNoEtcd(t *testing.T) {
	srv, a, _ := pair(t, Config{})
	client := srv.Client()
	// 100 per hour on two gateways: an equal share is 50, half of it 25.
	for range 20 {
		if d := a.Allow("u-quiet", 100, time.Hour); !d.Allowed {
			t.Fatalf("refused below the limit: %+v", d)
		}
	}
	// Rounds of publication pass, each looking at the users that turned
	// hot, writing nothing.
	start := a.stats.rounds.Load()
	waitFor(t, 5*time.Second, "five publication rounds", func() bool { return a.stats.rounds.Load() >= start+5 })
	if s := a.Stats(); s.Writes != 0 || s.Hot != 0 {
		t.Fatalf("a user below half its share made etcd traffic: %+v", s)
	}
	resp, err := client.Get(context.Background(), prefix+"demand/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("demand keys: %v, %v", resp, err)
	}
	// Past half the share, the user's demand is published.
	for range 10 {
		a.Allow("u-quiet", 100, time.Hour)
	}
	waitFor(t, 5*time.Second, "demand published", func() bool {
		resp, err := client.Get(context.Background(), prefix+"demand/u-quiet/"+a.Gateway())
		if err != nil || len(resp.Kvs) != 1 {
			return false
		}
		p, ok := parseRecord(resp.Kvs[0].Value)
		return ok && p.admitted == 30 && p.demand == 30
	})
}

// run admits requests of user on l every pace until stop, counting by
// window what was admitted and refused.
type tally struct {
	mu                sync.Mutex
	admitted, refused map[int64]int
	sent              int
}

func drive(l *Limiter, user string, limit int64, window, pace time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) *tally {
	tl := &tally{admitted: map[int64]int{}, refused: map[int64]int{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			now := time.Now().UnixNano()
			d := l.Allow(user, limit, window)
			w := now / int64(window)
			tl.mu.Lock()
			tl.sent++
			if d.Allowed {
				tl.admitted[w]++
			} else {
				tl.refused[w]++
			}
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *tally) counts(w int64) (admitted, refused int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.admitted[w], tl.refused[w]
}

// TestSkewedLoadSharesOneBudget: one gateway takes nearly all of a user's
// traffic, another serves a light client of the same user. Together they
// admit the budget (±10% per window once demand is known), and the light
// client is not starved.
func TestSkewedLoadSharesOneBudget(t *testing.T) {
	_, a, b := pair(t, Config{})
	const limit, window = 100, time.Second
	// Start at a window boundary.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window)))
	first := time.Now().UnixNano() / int64(window)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	heavy := drive(a, "u-skewed", limit, window, 500*time.Microsecond, stop, &wg) // ~2000/s
	light := drive(b, "u-skewed", limit, window, 100*time.Millisecond, stop, &wg) // 10/s
	const windows = 6
	waitFor(t, (windows+2)*window, "the windows to pass", func() bool {
		return time.Now().UnixNano()/int64(window) >= first+windows
	})
	close(stop)
	wg.Wait()
	// The first window runs on equal shares while demand is published.
	total, lightSent, lightAdmitted := 0, 0, 0
	for w := first + 1; w < first+windows; w++ {
		ha, hr := heavy.counts(w)
		la, lr := light.counts(w)
		t.Logf("window %d: heavy gateway %d admitted, %d refused; light gateway %d admitted, %d refused", w-first, ha, hr, la, lr)
		if sum := ha + la; sum < limit*90/100 || sum > limit*110/100 {
			t.Errorf("window %d admitted %d, want %d ±10%%", w-first, sum, limit)
		}
		total += ha + la
		lightSent += la + lr
		lightAdmitted += la
	}
	if lightAdmitted*10 < lightSent*9 {
		t.Errorf("the light client got %d of %d requests through, want ≥ 90%%", lightAdmitted, lightSent)
	}
	t.Logf("%d windows: %d admitted of a budget of %d; light client %d/%d; etcd writes: heavy %d, light %d",
		windows-1, total, (windows-1)*limit, lightAdmitted, lightSent, a.Stats().Writes, b.Stats().Writes)
}

// TestCutOffGatewayKeepsItsShare: with etcd gone, a gateway keeps admitting
// the share it last had: not the whole budget, and not nothing.
func TestCutOffGatewayKeepsItsShare(t *testing.T) {
	srv, a, b := pair(t, Config{})
	const limit, window = 100, time.Second
	stop := make(chan struct{})
	var wg sync.WaitGroup
	heavy := drive(a, "u-cut", limit, window, 2*time.Millisecond, stop, &wg) // ~500/s
	other := drive(b, "u-cut", limit, window, 2*time.Millisecond, stop, &wg) // ~500/s
	waitFor(t, 10*time.Second, "both gateways to publish", func() bool {
		return a.Stats().Published > 0 && b.Stats().Published > 0
	})
	srv.Stop()
	waitFor(t, 10*time.Second, "the lease to be lost", func() bool { return !a.Stats().Registered })
	now := time.Now().UnixNano() / int64(window)
	waitFor(t, 3*window, "two full windows without etcd", func() bool {
		return time.Now().UnixNano()/int64(window) >= now+3
	})
	close(stop)
	wg.Wait()
	for w := now + 1; w < now+3; w++ {
		ha, _ := heavy.counts(w)
		oa, _ := other.counts(w)
		if ha < 45 || ha > 55 || oa < 45 || oa > 55 {
			t.Errorf("cut off, window %d: the gateways admitted %d and %d, want their shares of 50", w-now, ha, oa)
		}
	}
}

// TestGatewayGoneItsShareReturns: when a gateway stops (or its lease
// expires), the others divide its share.
func TestGatewayGoneItsShareReturns(t *testing.T) {
	srv := etcdtest.Start(t)
	a := newLimiter(t, srv.Client(), Config{})
	crashed := srv.Client()
	b := New(crashed, prefix, Config{Interval: 50 * time.Millisecond, LeaseTTL: 2 * time.Second})
	defer b.Close()
	registered(t, a, b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	drive(a, "u-gone", 100, time.Second, time.Millisecond, stop, &wg)
	drive(b, "u-gone", 100, time.Second, time.Millisecond, stop, &wg)
	share := func(l *Limiter) float64 {
		u := l.lockedState("u-gone")
		defer u.mu.Unlock()
		return float64(u.initial)
	}
	waitFor(t, 10*time.Second, "equal shares", func() bool { return share(a) == 50 && share(b) == 50 })
	// b's connection dies without a word: its lease expires.
	crashed.Close()
	waitFor(t, 10*time.Second, "a to take the whole budget", func() bool { return share(a) == 100 })
	close(stop)
	wg.Wait()
}

func TestSweepDropsQuietUsers(t *testing.T) {
	srv := etcdtest.Start(t)
	c := startClock()
	l := newLimiter(t, srv.Client(), Config{now: c.now})
	l.Allow("u-once", 10, time.Second)
	count := func() int {
		n := 0
		l.users.Range(func(any, any) bool { n++; return true })
		return n
	}
	l.sweep()
	c.add(3 * time.Second)
	l.sweep()
	if count() != 1 {
		t.Fatal("dropped too early")
	}
	c.add(sweepInterval + 3*time.Second)
	l.sweep()
	if count() != 0 {
		t.Fatal("a quiet user's state is kept")
	}
	if d := l.Allow("u-once", 10, time.Second); !d.Allowed || d.Remaining != 9 {
		t.Fatalf("after the sweep: %+v", d)
	}
}

// registered waits until each of two limiters sees the other.
func registered(t *testing.T, a, b *Limiter) {
	t.Helper()
	waitFor(t, 5*time.Second, "both registered, each seeing the other", func() bool {
		return a.Stats().Gateways == 2 && b.Stats().Gateways == 2
	})
}

// pair starts two limiters with cfg on one etcd and waits until each sees
// the other.
func pair(t *testing.T, cfg Config) (srv *etcdtest.Server, a, b *Limiter) {
	t.Helper()
	srv = etcdtest.Start(t)
	a = newLimiter(t, srv.Client(), cfg)
	b = newLimiter(t, srv.Client(), cfg)
	registered(t, a, b)
	return srv, a, b
}

// startClock is a settable clock at the start of a whole minute.
func startClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

// admit sends n requests of the user to l and counts those admitted.
func admit(l *Limiter, user string, n int, requests int64, window time.Duration) int {
	got := 0
	for range n {
		if l.Allow(user, requests, window).Allowed {
			got++
		}
	}
	return got
}

// peerCount waits until l knows that the other gateway admitted want
// requests of the user in the current window.
func peerCount(t *testing.T, l *Limiter, user string, want int64) {
	t.Helper()
	waitFor(t, 5*time.Second, "the other gateway's count", func() bool {
		u := l.lockedState(user)
		defer u.mu.Unlock()
		for _, p := range u.peers {
			if p.admitted == want {
				return true
			}
		}
		return false
	})
}

// TestSmallBudgetOnManyGateways: a budget smaller than the gateways sharing
// it is divided in whole requests the same way on every gateway: never
// more than the budget in a window, even while both are hammered.
func TestSmallBudgetOnManyGateways(t *testing.T) {
	c := startClock()
	_, a, b := pair(t, Config{now: c.now})
	total := 0
	for w := range 10 {
		na := admit(a, "u-small", 5, 1, time.Second)
		nb := admit(b, "u-small", 5, 1, time.Second)
		if na+nb > 1 {
			t.Fatalf("window %d: a admitted %d, b %d; the budget is 1", w, na, nb)
		}
		total += na + nb
		c.add(time.Second)
	}
	if total < 9 {
		t.Fatalf("%d admitted in 10 windows of a budget of 1", total)
	}
}

// TestChangedLimitKeepsTheCount: changing a user's limit — even lowering it,
// to a longer window — never hands out a fresh budget.
func TestChangedLimitKeepsTheCount(t *testing.T) {
	srv := etcdtest.Start(t)
	c := startClock() // a whole minute
	l := newLimiter(t, srv.Client(), Config{now: c.now})
	if n := admit(l, "u-1", 12, 10, time.Minute); n != 10 {
		t.Fatalf("%d admitted of 10", n)
	}
	c.add(30 * time.Second)
	for _, w := range []time.Duration{61 * time.Second, 62 * time.Second, 90 * time.Second, time.Minute} {
		if n := admit(l, "u-1", 5, 10, w); n != 0 {
			t.Fatalf("after changing the window to %s, %d more admitted", w, n)
		}
	}
	if n := admit(l, "u-1", 5, 9, time.Minute); n != 0 {
		t.Fatalf("after lowering to 9, %d more admitted", n)
	}
	if n := admit(l, "u-1", 5, 12, time.Minute); n != 2 {
		t.Fatalf("after raising to 12, %d more admitted, want 2", n)
	}
	// A new window length never ends the current window sooner: the
	// count runs until the latest end of the windows it was under, here
	// the 90 s window that began with the minute. Past it, a fresh budget.
	c.add(59 * time.Second)
	if n := admit(l, "u-1", 5, 12, time.Minute); n != 0 {
		t.Fatalf("before the window's end, %d more admitted", n)
	}
	c.add(time.Second)
	if n := admit(l, "u-1", 15, 12, time.Minute); n != 12 {
		t.Fatalf("in the next window %d admitted, want 12", n)
	}
}

// TestSwitchingGatewaysMidWindow: a client that moves to another gateway
// in the middle of a window gets what is left of the budget there, not a
// fresh share.
func TestSwitchingGatewaysMidWindow(t *testing.T) {
	_, a, b := pair(t, Config{now: startClock().now})
	na := admit(a, "u-move", 150, 100, time.Minute)
	peerCount(t, b, "u-move", int64(na))
	nb := admit(b, "u-move", 150, 100, time.Minute)
	na2 := admit(a, "u-move", 150, 100, time.Minute)
	if total := na + nb + na2; total > 101 || total < 95 {
		t.Fatalf("a %d, then b %d, then a %d: %d in one window of a budget of 100", na, nb, na2, total)
	}
}

// TestStoppedGatewaySpentStaysSpent: a gateway that stops hands over its
// share, but what it admitted stays counted until the window ends.
func TestStoppedGatewaySpentStaysSpent(t *testing.T) {
	srv := etcdtest.Start(t)
	c := startClock()
	a := newLimiter(t, srv.Client(), Config{now: c.now})
	b := New(srv.Client(), prefix, Config{now: c.now, Interval: 50 * time.Millisecond, LeaseTTL: 2 * time.Second})
	registered(t, a, b)
	nb := admit(b, "u-stop", 15, 20, time.Minute)
	na := admit(a, "u-stop", 8, 20, time.Minute)
	b.Close()
	waitFor(t, 5*time.Second, "b gone", func() bool { return a.Stats().Gateways == 1 })
	peerCount(t, a, "u-stop", int64(nb))
	na2 := admit(a, "u-stop", 30, 20, time.Minute)
	if total := nb + na + na2; total > 21 {
		t.Fatalf("b %d, a %d, b stopped, a %d more: %d in one window of a budget of 20", nb, na, na2, total)
	}
	if na+na2 < 20-nb-1 {
		t.Fatalf("a got %d in all; b's unspent share did not come over", na+na2)
	}
}

func BenchmarkAllow(b *testing.B) {
	srv := etcdtest.Start(b)
	l := New(srv.Client(), prefix, Config{})
	defer l.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow("u-bench", 1_000_000_000, time.Second)
		}
	})
}
