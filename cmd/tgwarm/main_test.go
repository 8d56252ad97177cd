package main

import (
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a tokengate instance, as the tool
// does with its own binary.
func TestMain(m *testing.M) { tool.TestMain(m) }

// TestRestartsWarm restarts a real gateway process under load, warm_start
// off then on, on a few hundred tokens and short windows: with warming the
// gateway says it found every token used lately, and its requests after
// the restart miss the cache a quarter as often as without, or less (the tool reports
// the real figures).
func TestRestartsWarm(t *testing.T) {
	connections, steadyFor, afterFor, modes = 4, time.Second, 2*time.Second, []bool{false, true}
	const tokens = 400
	res := tool.Test(t, tokens)
	if len(res.restarts) != 2 {
		t.Fatalf("%d restarts", len(res.restarts))
	}
	off, on := res.restarts[0], res.restarts[1]
	// Every token was used lately; those a request looked up first are
	// not read again by warming.
	if off.warmed != "" || !strings.Contains(on.warmed, `"recently_used":400`) {
		t.Errorf("warming logged %q with warm_start off and %q with it on, want 400 recently used with it on", off.warmed, on.warmed)
	}
	if on.misses*4 > off.misses {
		t.Errorf("cache misses per 1000 requests after the restart: %.0f warm_start off, %.0f on", off.misses, on.misses)
	}
}
