package webhook

import (
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/webhooktest"
)

// TestAuditRetention: the leading engine deletes the audit events older
// than the retention, every organization's, and keeps the newer ones.
func TestAuditRetention(t *testing.T) {
	e := newEnv(t)
	e.accounts(5) // five account.create events, written now
	old := e.auditLen()
	if old < 5 {
		t.Fatalf("%d audit events", old)
	}
	// Seen from 10 days on, with a 7-day retention, they are all past it.
	cfg := fast()
	cfg.AuditRetention = 7 * 24 * time.Hour
	cfg.PruneInterval = 50 * time.Millisecond
	later := time.Now().Add(10 * 24 * time.Hour)
	cfg.Now = func() time.Time { return later }
	eng, _ := e.engine(cfg)
	webhooktest.WaitFor(t, "the old events pruned", 10*time.Second, func() bool { return eng.Pruned() >= int64(old) })
	if n := e.auditLen(); n != 0 {
		t.Fatalf("%d audit events left of %d", n, old)
	}
}

// auditLen counts the organization's audit events.
func (e *env) auditLen() int {
	e.t.Helper()
	events, _, err := e.store.ListEvents(e.ctx(), e.org, "", 1000, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return len(events)
}
