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

// TestFreshness revokes tokens through instance A and checks that instance
// B, a separate process, refuses every one of them, never admits one again,
// and does so within a generous bound (the tool reports the real figures).
func TestFreshness(t *testing.T) {
	var log bytes.Buffer
	res, err := run(config{tokens: 50, timeout: 5 * time.Second, self: []string{os.Args[0]}, log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.delays) != 50 || res.admitted != 0 || res.timedOut != 0 {
		t.Fatalf("%d refused, %d admitted again, %d not refused in time", len(res.delays), res.admitted, res.timedOut)
	}
	var out bytes.Buffer
	res.print(&out)
	t.Log(out.String())
	for _, d := range res.delays {
		if d > 2*time.Second {
			t.Fatalf("a revocation took %s to reach B", d)
		}
	}
	if !strings.Contains(out.String(), "p99") {
		t.Fatalf("report: %s", out.String())
	}
}
