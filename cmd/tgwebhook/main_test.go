package main

import (
	"testing"
	"time"
)

// TestMain lets the test binary serve as a tokengate instance, as the tool
// does with its own binary.
func TestMain(m *testing.M) { tool.TestMain(m) }

// TestLatency writes events through a gateway process and checks that each
// arrives, signed, once, within a generous bound (the tool reports the real
// figures).
func TestLatency(t *testing.T) {
	res := tool.Test(t, 30)
	if len(res.latencies) != 30 || res.lost != 0 || res.badSignatures != 0 || res.repeated != 0 {
		t.Fatalf("%d delivered, %d lost, %d repeated, %d bad signatures", len(res.latencies), res.lost, res.repeated, res.badSignatures)
	}
	for _, d := range res.latencies {
		if d > 2*time.Second || d < 0 {
			t.Fatalf("a delivery took %s", d)
		}
	}
}
