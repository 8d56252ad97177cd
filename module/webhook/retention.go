package webhook

import (
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/usage"
)

// The audit trail is kept for the audit retention (the global option
// audit_retention, default 90 days): while it leads, the deliverer deletes
// older events every PruneInterval. A webhook whose deliveries fall
// further behind than that (disabled for months, say) loses the events
// pruned meanwhile; deliveries are retried for 24 hours only, so a live
// receiver never does.

// SetAuditRetention changes how long audit events are kept.
func (e *Engine) SetAuditRetention(d time.Duration) {
	if d > 0 {
		e.retention.Store(int64(d))
	}
}

// SetUsageRetention changes how long request counts are kept.
func (e *Engine) SetUsageRetention(d time.Duration) {
	if d > 0 {
		e.usageKept.Store(int64(d))
	}
}

// Pruned counts the audit events this engine deleted as leader.
func (e *Engine) Pruned() int64 { return e.pruned.Load() }

// pruneAudit deletes audit events and request counts past their
// retention, at once and then every PruneInterval, while the term lasts.
func (t *term) pruneAudit() {
	tick := time.NewTicker(t.e.cfg.PruneInterval)
	defer tick.Stop()
	for {
		before := t.e.cfg.Now().Add(-time.Duration(t.e.retention.Load()))
		n, err := t.e.store.PruneAudit(t.ctx, t.lead, before)
		t.e.pruned.Add(n)
		switch {
		case err != nil && t.ctx.Err() == nil:
			t.e.log.Debug("pruning the audit trail", zap.Error(err))
		case n > 0:
			t.e.log.Info("audit events past the retention deleted", zap.Int64("events", n), zap.Time("before", before))
		}
		t.pruneUsage()
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pruneUsage deletes the request counts of the days wholly before the
// usage retention: a day is kept while any of its hours is within it.
func (t *term) pruneUsage() {
	before := t.e.cfg.Now().Add(-time.Duration(t.e.usageKept.Load())).UTC().Format(usage.DayLayout)
	n, err := t.e.store.DeleteUsageBefore(t.ctx, before)
	switch {
	case err != nil && t.ctx.Err() == nil:
		t.e.log.Debug("pruning request counts", zap.Error(err))
	case n > 0:
		t.e.log.Info("request counts past the retention deleted", zap.Int64("rollups", n), zap.String("before_day", before))
	}
}
