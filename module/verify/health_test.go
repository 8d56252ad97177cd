package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// logsUntil waits, with a deadline, until the observed log holds an entry
// with the message, and returns every entry so far.
func logsUntil(t *testing.T, logs *observer.ObservedLogs, msg string, within time.Duration) []observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		all := logs.All()
		for _, e := range all {
			if e.Message == msg {
				return all
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, e := range all {
				got = append(got, e.Level.String()+" "+e.Message)
			}
			t.Fatalf("no %q within %v; logged: %q", msg, within, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(entries []observer.LoggedEntry, msg string) int {
	n := 0
	for _, e := range entries {
		if e.Message == msg {
			n++
		}
	}
	return n
}

// TestStoreHealthIsLoggedOncePerChange: ready once etcd answers; one error
// when it stops answering, naming the store and the effect; reminders at
// the set interval, not per attempt or per refused request; info when it
// is back. Down says so meanwhile.
func TestStoreHealthIsLoggedOncePerChange(t *testing.T) {
	srv := etcdtest.Start(t)
	core, logs := observer.New(zapcore.DebugLevel)
	st := store.New(srv.Client(), "/tg")
	v, err := New(st, Config{MaxStale: time.Second, CacheTTL: time.Minute, LookupTimeout: 300 * time.Millisecond,
		Logger: zap.New(core), StoreName: "etcd at " + srv.Endpoint(), ReminderInterval: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	entries := logsUntil(t, logs, "tokengate ready", 5*time.Second)
	if count(entries, "etcd unreachable") != 0 || v.Down() {
		t.Fatal("an outage before etcd ever failed")
	}
	ready := logs.FilterMessage("tokengate ready").All()[0]
	if ready.Level != zapcore.InfoLevel || ready.ContextMap()["store"] != "etcd at "+srv.Endpoint() {
		t.Errorf("ready: %v %v", ready.Level, ready.ContextMap())
	}

	srv.Stop()
	stopped := time.Now()
	entries = logsUntil(t, logs, "etcd unreachable", 10*time.Second)
	t.Logf("outage logged %v after etcd stopped", time.Since(stopped).Round(time.Millisecond))
	if !v.Down() {
		t.Error("Down is false during the outage")
	}
	outage := logs.FilterMessage("etcd unreachable").All()[0]
	fields := outage.ContextMap()
	if outage.Level != zapcore.ErrorLevel || fields["store"] != "etcd at "+srv.Endpoint() ||
		!strings.Contains(fields["effect"].(string), "503") || fields["max_stale"] != time.Second {
		t.Errorf("outage entry: %v %v", outage.Level, fields)
	}
	// Requests during the outage are refused without a log entry each.
	unknown, _ := token.Generate(token.Programmatic)
	for range 20 {
		if _, err := v.Verify(context.Background(), unknown); err == nil {
			t.Fatal("verified during the outage")
		}
	}
	logsUntil(t, logs, "etcd still unreachable", 5*time.Second)
	entries = logs.All()
	for _, e := range entries {
		if e.Level >= zapcore.WarnLevel && e.Message != "etcd unreachable" && e.Message != "etcd still unreachable" {
			t.Errorf("logged during the outage: %s %s", e.Level, e.Message)
		}
	}
	if n := count(entries, "etcd unreachable"); n != 1 {
		t.Errorf("%d outage errors, want 1", n)
	}

	srv.Restart()
	entries = logsUntil(t, logs, "etcd reachable again", 15*time.Second)
	back := logs.FilterMessage("etcd reachable again").All()[0]
	if back.Level != zapcore.InfoLevel || back.ContextMap()["verifications_refused"].(int64) < 20 {
		t.Errorf("recovery entry: %v %v", back.Level, back.ContextMap())
	}
	if v.Down() {
		t.Error("Down after recovery")
	}
}

// TestReadyOnlyOnceEtcdAnswered: a verifier started while etcd is down
// says it is unreachable, not ready, and ready once etcd answers.
func TestReadyOnlyOnceEtcdAnswered(t *testing.T) {
	srv := etcdtest.Start(t)
	client := srv.Client()
	srv.Stop()
	core, logs := observer.New(zapcore.InfoLevel)
	v, err := New(store.New(client, "/tg"), Config{MaxStale: time.Second, CacheTTL: time.Minute,
		LookupTimeout: 300 * time.Millisecond, Logger: zap.New(core), StoreName: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	entries := logsUntil(t, logs, "etcd unreachable", 10*time.Second)
	if count(entries, "tokengate ready") != 0 {
		t.Fatal("ready before etcd answered")
	}
	srv.Restart()
	logsUntil(t, logs, "etcd reachable: tokengate ready", 15*time.Second)
}
