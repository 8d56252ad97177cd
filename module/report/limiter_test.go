package report

import (
	"fmt"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Limit
		ok   bool
	}{
		{"60/1h", Limit{60, time.Hour}, true},
		{"1/1s", Limit{1, time.Second}, true},
		{"1000/1d", Limit{1000, 24 * time.Hour}, true},
		{"5/90m", Limit{5, 90 * time.Minute}, true},
		{"60", Limit{}, false},
		{"60/", Limit{}, false},
		{"/1h", Limit{}, false},
		{"0/1h", Limit{}, false},
		{"-1/1h", Limit{}, false},
		{"1000001/1h", Limit{}, false},
		{"60/0s", Limit{}, false},
		{"60/500ms", Limit{}, false},
		{"60/8d", Limit{}, false},
		{"60/soon", Limit{}, false},
		{"sixty/1h", Limit{}, false},
	} {
		got, err := ParseLimit(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
		}
		if c.ok {
			if again, err := ParseLimit(got.String()); err != nil || again != got {
				t.Errorf("ParseLimit(%q.String() = %q) = %v, %v", c.in, got.String(), again, err)
			}
		}
	}
}

func TestLimitString(t *testing.T) {
	for in, want := range map[string]string{"60/1h": "60/1h", "1/1s": "1/1s", "5/90m": "5/1h30m", "7/30m": "7/30m", "9/1d": "9/24h", "2/90s": "2/1m30s"} {
		l, err := ParseLimit(in)
		if err != nil || l.String() != want {
			t.Errorf("ParseLimit(%q).String() = %q, %v; want %q", in, l.String(), err, want)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLimiter(l Limit) (*Limiter, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim := NewLimiter(l)
	lim.now = clock.now
	return lim, clock
}

// TestLimiterBudget: Requests at once, then refused with the time until
// the budget has refilled by one; one more per Window/Requests after.
func TestLimiterBudget(t *testing.T) {
	lim, clock := newTestLimiter(Limit{Requests: 3, Window: time.Hour})
	for i := 0; i < 3; i++ {
		if ok, _ := lim.Allow("192.0.2.1"); !ok {
			t.Fatalf("request %d refused", i+1)
		}
	}
	ok, retry := lim.Allow("192.0.2.1")
	if ok || retry != 20*time.Minute {
		t.Fatalf("4th request: ok=%v retry=%v, want refused for 20m", ok, retry)
	}
	if ok, _ := lim.Allow("192.0.2.2"); !ok {
		t.Fatal("another client was refused")
	}
	clock.t = clock.t.Add(19 * time.Minute)
	if ok, retry := lim.Allow("192.0.2.1"); ok || retry != time.Minute {
		t.Fatalf("after 19m: ok=%v retry=%v, want refused for 1m", ok, retry)
	}
	clock.t = clock.t.Add(time.Minute)
	if ok, _ := lim.Allow("192.0.2.1"); !ok {
		t.Fatal("refused after the budget refilled by one")
	}
	if ok, _ := lim.Allow("192.0.2.1"); ok {
		t.Fatal("a refill of one let two through")
	}
	clock.t = clock.t.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if ok, _ := lim.Allow("192.0.2.1"); !ok {
			t.Fatalf("after a full window, request %d refused", i+1)
		}
	}
}

// TestLimiterClients: IPv4-mapped addresses are their IPv4 address, an
// IPv6 /64 is one client.
func TestLimiterClients(t *testing.T) {
	for _, c := range []struct {
		name, a, b string
		same       bool
	}{
		{"IPv4", "192.0.2.1", "192.0.2.1", true},
		{"IPv4 neighbours", "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped", "::ffff:192.0.2.1", "192.0.2.1", true},
		{"one IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"IPv6 neighbouring /64s", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv6 zone", "fe80::1%eth0", "fe80::2", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lim, _ := newTestLimiter(Limit{Requests: 1, Window: time.Hour})
			lim.Allow(c.a)
			ok, _ := lim.Allow(c.b)
			if ok == c.same {
				t.Fatalf("second request allowed=%v; want the two counted as one client: %v", ok, c.same)
			}
		})
	}
}

// TestLimiterBounded: an attacker cycling through addresses does not grow
// the limiter past MaxClients; a client seen recently is kept.
func TestLimiterBounded(t *testing.T) {
	lim, _ := newTestLimiter(Limit{Requests: 1, Window: time.Hour})
	lim.max = 100
	lim.Allow("198.51.100.1")
	for i := 0; i < 10*lim.max; i++ {
		lim.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if i%50 == 0 {
			// The limited client keeps trying; it stays remembered.
			if ok, _ := lim.Allow("198.51.100.1"); ok {
				t.Fatalf("after %d other clients, the limited client got a fresh budget", i)
			}
		}
		if n := lim.Clients(); n > lim.max {
			t.Fatalf("%d clients remembered, more than %d", n, lim.max)
		}
	}
}
