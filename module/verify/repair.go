package verify

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/store"
)

// On a store at schema 3 a cold lookup reads the copy of the token's user
// under the token's digest. A gateway of this build writes a user and its
// copies in one transaction; an older one that was paused or cut off from
// etcd when the operator upgraded writes the user alone once it is back.
// Four things keep such a write from being judged by a stale copy:
//
//   - Copies are read only while the watch is in sync within max_stale
//     (the store's copy gate), as cached verdicts are served: a gateway
//     paused or cut off reads records until its watch has caught up.
//   - The watch sees the write — a user or token record written at a
//     revision with no copy of it (store.StaleCopies) — and makes the user
//     a suspect: its lookups read records until the user's copies are
//     rewritten (store.Recopy, at once, in the background). A verdict read
//     from a stale copy before the watch saw the write depends on the
//     copy's key, which the repair rewrites: it is news then. Without a
//     repair (too many suspects, or etcd failing), every verdict looked up
//     so far is forgotten and copies wait for a sweep.
//   - Each watch that starts sweeps the store before trusting copies
//     (store.SweepCopies): what was written while no gateway of this build
//     watched.
//   - Every gateway on a store at 3 looks at the registrations every few
//     heartbeats: an older gateway registered moves the store back to 2.

// guardEvery is how many heartbeats apart a gateway on a store at schema 3
// looks whether a gateway of an older version has registered
// (store.GuardCopies), which moves the store back to schema 2.
const guardEvery = 3

// guardCopies moves the store back to schema 2 when a gateway of an older
// version is registered, and says so.
func (v *Verifier) guardCopies(ctx context.Context) {
	res, err := v.store.GuardCopies(ctx)
	switch {
	case err != nil:
		v.log.Debug("looking for gateways of an older version", zap.Error(err))
	case res.Downgraded:
		v.log.Error("store schema moved back: a gateway of an older version is registered; stop it, then run tokengate store upgrade",
			zap.Int("version", res.Version), zap.Strings("gateways", res.Holdouts))
	}
}

// repairQueue bounds the users waiting for their copies to be rewritten,
// and the suspects; beyond it every lookup reads records until a sweep
// has ended (store.Resweep).
const repairQueue = 1024

// suspects are the users seen written without their copies and not yet
// repaired, by "<org>/<user>", with the revision of the latest such write.
type suspects struct {
	mu sync.Mutex
	m  map[string]int64
	n  atomic.Int64 // len(m), read without the lock
}

// add makes the user a suspect as of rev; false when there are too many.
func (s *suspects) add(w store.WrittenAlone) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := w.Org + "/" + w.User
	if _, ok := s.m[k]; !ok && len(s.m) >= repairQueue {
		return false
	}
	if s.m == nil {
		s.m = map[string]int64{}
	}
	s.m[k] = max(s.m[k], w.Revision)
	s.n.Store(int64(len(s.m)))
	return true
}

// has reports whether the user is a suspect.
func (s *suspects) has(org, user string) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[org+"/"+user]
	return ok
}

// clear forgets the user when no write after rev made it a suspect.
func (s *suspects) clear(org, user string, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := org + "/" + user; s.m[k] <= rev {
		delete(s.m, k)
		s.n.Store(int64(len(s.m)))
	}
}

// clearUpTo forgets the suspects of writes at or before rev: a sweep that
// looked at rev repaired them.
func (s *suspects) clearUpTo(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.m {
		if r <= rev {
			delete(s.m, k)
		}
	}
	s.n.Store(int64(len(s.m)))
}

// copyAllowed is the store's copy gate: the watch in sync within
// max_stale, and the user no suspect.
func (v *Verifier) copyAllowed(org, user string) bool {
	return v.changes.newsWithin(v.cfg.now(), v.cfg.MaxStale) && !v.suspects.has(org, user)
}

// queueRepairs makes the users written without their copies suspects and
// hands them to the repairer; when there are too many, every lookup reads
// records until a sweep has repaired them all.
func (v *Verifier) queueRepairs(written []store.WrittenAlone) {
	for _, w := range written {
		queued := false
		if v.suspects.add(w) {
			select {
			case v.repairs <- w:
				queued = true
			default:
			}
		}
		if !queued {
			v.store.Resweep()
			v.forgetLookups()
			v.log.Warn("too many users written without their copies to repair one by one: copies are not read until a sweep has rewritten them; stop every gateway of an older version, then run tokengate store upgrade",
				zap.String("org", w.Org), zap.String("user", w.User))
		}
	}
}

// forgetLookups makes every verdict looked up so far not current: one may
// have been read from a copy written stale.
func (v *Verifier) forgetLookups() {
	v.changes.flush(v.lookedUpAt.Load() + 1)
}

// repairCopies rewrites the copies of the users queued, one at a time,
// until the verifier closes.
func (v *Verifier) repairCopies() {
	defer v.wg.Done()
	for {
		select {
		case <-v.ctx.Done():
			return
		case w := <-v.repairs:
			if v.beforeRepair != nil {
				v.beforeRepair()
			}
			ctx, cancel := context.WithTimeout(v.ctx, v.directoryLoadTimeout())
			wrote, err := v.store.Recopy(ctx, w.Org, w.User)
			cancel()
			if err != nil {
				if v.ctx.Err() == nil {
					// The user stays a suspect (its lookups read records)
					// until a sweep repairs it; verdicts read from its
					// stale copies before the watch saw the write are
					// forgotten, as no rewrite of them will tell.
					v.store.Resweep()
					v.forgetLookups()
					v.log.Warn("could not rewrite the copies of a user written by an older gateway", zap.String("org", w.Org),
						zap.String("user", w.User), zap.Error(err))
				}
				continue
			}
			if wrote {
				// A verdict read from a stale copy before the watch saw
				// the write depends on the copy's key, rewritten now: it
				// is news.
				v.changes.repairs.Add(1)
				v.log.Info("copies of a user written by an older gateway rewritten", zap.String("org", w.Org), zap.String("user", w.User))
			}
			// Else current already: another gateway repaired it, or a user
			// without tokens.
			v.suspects.clear(w.Org, w.User, w.Revision)
		}
	}
}

// sweepFor bounds one sweep of the copies; one cut short starts again at
// the next heartbeat, and what it rewrote stays rewritten.
const sweepFor = time.Minute

// sweepCopies sweeps the copies in the background (store.SweepCopies),
// one sweep at a time, and says what it rewrote.
func (v *Verifier) sweepCopies() {
	if !v.store.SweepDue() || !v.sweeping.CompareAndSwap(false, true) {
		return
	}
	v.wg.Go(func() {
		defer v.sweeping.Store(false)
		ctx, cancel := context.WithTimeout(v.ctx, sweepFor)
		defer cancel()
		n, rev, err := v.store.SweepCopies(ctx)
		switch {
		case err != nil:
			if v.ctx.Err() == nil {
				v.log.Debug("copies not swept yet; cold lookups read records and users", zap.Error(err))
			}
			return
		case n > 0:
			v.changes.repairs.Add(int64(n))
			v.log.Warn("copies of users written by an older gateway while no gateway of this version watched rewritten",
				zap.Int("users", n))
		}
		v.suspects.clearUpTo(rev)
	})
}
