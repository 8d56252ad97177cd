package main

import "testing"

// TestMain lets the test binary serve as a tokengate instance, as the tool
// does with its own binary.
func TestMain(m *testing.M) { tool.TestMain(m) }

// TestSharedBudget runs the measurement briefly: both gateways together
// stay within ±10% of the budget in every window and the light client is
// not starved (the tool reports the real figures).
func TestSharedBudget(t *testing.T) {
	res := tool.Test(t, 3)
	if res.Failed() {
		t.Fatalf("A by window %v, B %v, light client %d/%d, %d unexpected answers",
			res.admittedA, res.admittedB, res.lightAdmitted, res.lightSent, res.errors)
	}
	if res.writesA == 0 {
		t.Fatal("A never published its demand: B could not have kept its share")
	}
}
