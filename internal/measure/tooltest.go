package measure

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testenv"
)

// TestMain is the TestMain of the tool's tests: the test binary serves as
// a tokengate instance, as the tool's binary does, when the NAME_INSTANCE
// variable is set; otherwise the tests run, in a home of their own (see testenv).
func (t Tool[R]) TestMain(m *testing.M) {
	if serve(t.env()) {
		return
	}
	testenv.Main(m)
}

// Test measures count things, on an embedded etcd, with the test binary as
// the instances and a timeout of 5 s for each. It fails the test if the
// measurement fails or its report lacks a 99th percentile, logs the report,
// and returns what was measured.
func (t Tool[R]) Test(tb testing.TB, count int) R {
	tb.Helper()
	var log, report bytes.Buffer
	setup := Setup{Count: count, Timeout: 5 * time.Second, Log: &log, self: []string{os.Args[0]}, env: t.env()}
	rep, store, err := t.measure(setup, nil)
	if err != nil {
		tb.Fatalf("%v\n%s", err, log.String())
	}
	t.print(&report, rep, store)
	tb.Log(report.String())
	if !strings.Contains(report.String(), "p99") {
		tb.Fatalf("report: %s", report.String())
	}
	return rep
}
