package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/tokengate/tokengate/internal/testenv"
)

// TestMain lets the test binary serve as a tokengate instance, as the tool
// does with its own binary.
func TestMain(m *testing.M) {
	if os.Getenv(instanceEnv) != "" {
		caddycmd.Main()
		return
	}
	testenv.Main(m)
}

// TestLatency writes events through a gateway process and checks that each
// arrives, signed, once, within a generous bound (the tool reports the real
// figures).
func TestLatency(t *testing.T) {
	var log bytes.Buffer
	res, err := run(config{events: 30, timeout: 5 * time.Second, self: []string{os.Args[0]}, log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.latencies) != 30 || res.lost != 0 || res.badSignatures != 0 || res.repeated != 0 {
		t.Fatalf("%d delivered, %d lost, %d repeated, %d bad signatures", len(res.latencies), res.lost, res.repeated, res.badSignatures)
	}
	var out bytes.Buffer
	res.print(&out)
	t.Log(out.String())
	for _, d := range res.latencies {
		if d > 2*time.Second || d < 0 {
			t.Fatalf("a delivery took %s", d)
		}
	}
	if !strings.Contains(out.String(), "p99") {
		t.Fatalf("report: %s", out.String())
	}
}
