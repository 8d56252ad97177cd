package admin

import (
	"fmt"
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
