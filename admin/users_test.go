package admin

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// TestLowers: what counts as lowering a rate_limit, the rule an admin's
// change of its own limit must pass.
func TestLowers(t *testing.T) {
	rl := func(requests int64, window string) *store.RateLimit {
		return &store.RateLimit{Requests: requests, Window: window}
	}
	tests := []struct {
		prev, next *store.RateLimit
		lowers     bool
	}{
		{nil, nil, true},
		{nil, rl(1000000000, "1s"), true},
		{rl(100, "1m"), nil, false},
		{rl(100, "1m"), rl(100, "1m"), true},
		{rl(100, "1m"), rl(100, "60s"), true},
		{rl(100, "1m"), rl(100, "2m"), true},
		{rl(100, "1m"), rl(99, "1m"), true},
		{rl(100, "1m"), rl(1, "1s"), true},
		{rl(100, "1m"), rl(50, "30s"), true},
		{rl(100, "1m"), rl(101, "1m"), false},
		{rl(100, "1m"), rl(100, "59s"), false},
		{rl(100, "1m"), rl(2, "1s"), false},
		{rl(100, "1m"), rl(1000, "10m"), false},
		{rl(100, "1m"), rl(144000, "24h"), false},
		{rl(1000000000, "1s"), rl(1000000000, "24h"), true},
		{rl(1, "24h"), rl(1, "1s"), false},
		// What is no limit at all is lower than nothing (the store's
		// validation refuses it before).
		{rl(100, "1m"), rl(0, "1m"), false},
		{rl(100, "1m"), rl(-1, "1m"), false},
		{rl(100, "1m"), rl(1, "1d"), false},
		{rl(100, "1m"), rl(1, "-1m"), false},
		{nil, rl(0, "1m"), false},
		// A damaged stored value is judged as the gateway applies it.
		{rl(0, "1m"), rl(2, "1m"), false},
		{rl(0, "1m"), rl(1, "1m"), true},
		{rl(5, "nonsense"), rl(5, "1s"), true},
		{rl(5, "nonsense"), rl(6, "1s"), false},
		{rl(1<<62, "2000000h"), rl(1000000000, "1s"), false},
		{rl(1<<62, "2000000h"), rl(1000000000, "24h"), true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v to %v", tt.prev, tt.next), func(t *testing.T) {
			if got := lowers(tt.prev, tt.next); got != tt.lowers {
				t.Fatalf("lowers = %v, want %v", got, tt.lowers)
			}
		})
	}
}

// TestOutside: which network of a list lies within none of an admin's
// networks, the rule of narrowing one's own allowed_cidrs and of what an
// admin may give others.
func TestOutside(t *testing.T) {
	nets := func(list ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range list {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		nets    []netip.Prefix
		next    []string
		outside string
	}{
		{nets("10.0.0.0/8"), []string{"10.0.0.0/8"}, ""},
		{nets("10.0.0.0/8"), []string{"10.1.0.0/16", "10.2.3.4/32"}, ""},
		{nets("10.0.0.0/8", "::1/128"), []string{"::1/128", "10.0.0.0/9"}, ""},
		{nets("10.0.0.0/8"), nil, "anywhere"},
		{nets("10.0.0.0/8"), []string{}, "anywhere"},
		{nets("10.0.0.0/8"), []string{"10.0.0.0/7"}, "10.0.0.0/7"},
		{nets("10.0.0.0/8"), []string{"10.0.0.0/16", "11.0.0.0/8"}, "11.0.0.0/8"},
		{nets("10.0.0.0/8"), []string{"::ffff:10.0.0.0/104"}, ""}, // refused by the store's validation
		{nets("0.0.0.0/0"), []string{"::/0"}, "::/0"},
		{nil, []string{"10.0.0.0/8"}, "10.0.0.0/8"}, // no network parses: nothing is within
	}
	for _, tt := range tests {
		if got := outside(tt.nets, tt.next); got != tt.outside {
			t.Errorf("outside(%v, %q) = %q, want %q", tt.nets, tt.next, got, tt.outside)
		}
	}
	if !narrows(nil, []string{"10.0.0.0/8"}) || !narrows([]string{"10.0.0.0/8"}, []string{"10.0.0.0/9"}) ||
		narrows([]string{"10.0.0.0/8"}, nil) || narrows([]string{"not a network"}, []string{"10.0.0.0/8"}) {
		t.Error("narrows disagrees with outside")
	}
}
