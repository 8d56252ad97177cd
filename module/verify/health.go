package verify

import (
	"time"

	"go.uber.org/zap"
)

// LastSync is when the watch was last known to be in sync with etcd; zero
// before the first time.
func (v *Verifier) LastSync() time.Time {
	n := v.changes.newsAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Down reports whether the store is known to be unreachable: etcd has not
// answered for several heartbeats (or since the start, past a grace
// period). Admin changes are refused at once while it is down rather than
// left to time out.
func (v *Verifier) Down() bool { return v.down.Load() }

// monitor says in the log, once per change, how the store is doing: ready
// once etcd has answered the first time; unreachable (an error naming the
// store and what follows for requests) when it stops answering or never
// does; a reminder every Config.ReminderInterval while that lasts; reachable
// again when it is back. Everything in between — each failed attempt of
// the watch — is logged at debug level only, so an outage does not flood
// the log.
func (v *Verifier) monitor() {
	defer v.wg.Done()
	interval := v.heartbeatInterval()
	// Look often: a state change is logged within this of happening.
	t := time.NewTicker(min(interval, 100*time.Millisecond))
	defer t.Stop()
	started := v.cfg.now()
	// Before the first answer, allow one lookup's time plus a heartbeat.
	grace := v.cfg.LookupTimeout + interval
	var (
		ready      bool
		downSince  time.Time
		lastNotice time.Time
		refusedAt  int64 // unavailable verdicts when the outage began
	)
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
		}
		now := v.cfg.now()
		up := v.Reachable()
		switch {
		case up && !ready:
			ready = true
			if !downSince.IsZero() {
				v.log.Info("etcd reachable: tokengate ready", zap.String("store", v.cfg.StoreName),
					zap.Duration("unreachable_for", now.Sub(downSince).Round(time.Millisecond)))
			} else {
				v.log.Info("tokengate ready", zap.String("store", v.cfg.StoreName))
			}
			downSince = time.Time{}
			v.down.Store(false)
		case up && !downSince.IsZero():
			v.log.Info("etcd reachable again", zap.String("store", v.cfg.StoreName),
				zap.Duration("unreachable_for", now.Sub(downSince).Round(time.Millisecond)),
				zap.Int64("verifications_refused", v.stats.unavailable.Load()-refusedAt))
			downSince = time.Time{}
			v.down.Store(false)
		case !up && downSince.IsZero() && (ready || now.Sub(started) >= grace):
			downSince, lastNotice = now, now
			refusedAt = v.stats.unavailable.Load()
			v.down.Store(true)
			fields := []zap.Field{zap.String("store", v.cfg.StoreName),
				zap.Duration("max_stale", v.cfg.MaxStale),
				zap.String("effect", "cached identities are honoured until max_stale after the last sync, then requests get 503 store_unavailable; tokens not cached get 503 at once, except tokens never issued, 401 until max_stale; admin changes get 503")}
			if last := v.LastSync(); !last.IsZero() {
				fields = append(fields, zap.Time("last_sync", last))
			}
			v.log.Error("etcd unreachable", fields...)
		case !up && !downSince.IsZero() && now.Sub(lastNotice) >= v.cfg.ReminderInterval:
			lastNotice = now
			v.log.Warn("etcd still unreachable", zap.String("store", v.cfg.StoreName),
				zap.Duration("unreachable_for", now.Sub(downSince).Round(time.Second)),
				zap.Int64("verifications_refused", v.stats.unavailable.Load()-refusedAt))
		}
	}
}
