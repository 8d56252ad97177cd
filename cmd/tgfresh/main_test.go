package main

import (
	"testing"
	"time"
)

// TestMain lets the test binary serve as a tokengate instance, as the tool
// does with its own binary.
func TestMain(m *testing.M) { tool.TestMain(m) }

// TestFreshness revokes tokens through instance A and checks that instance
// B, a separate process, refuses every one of them, never admits one again,
// and does so within a generous bound (the tool reports the real figures).
func TestFreshness(t *testing.T) {
	res := tool.Test(t, 50)
	if len(res.delays) != 50 || res.admitted != 0 || res.timedOut != 0 {
		t.Fatalf("%d refused, %d admitted again, %d not refused in time", len(res.delays), res.admitted, res.timedOut)
	}
	for _, d := range res.delays {
		if d > 2*time.Second {
			t.Fatalf("a revocation took %s to reach B", d)
		}
	}
}
