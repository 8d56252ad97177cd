package verify

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// On a store at schema 3 a cold lookup reads the copy of the token's user
// under the token's digest. A gateway of this build writes a user and its
// copies in one transaction; an older one that was paused or cut off from
// etcd when the operator upgraded writes the user alone once it is back,
// until a newer gateway sees it registered and moves the store back. Each
// gateway's watch sees such a change — a user written at a revision with
// no copy of it (store.StaleCopies) — and rewrites the user's copies at
// once (store.Recopy), so a change made through the older gateway reaches
// cold lookups as fast as any change reaches cached verdicts. Every
// gateway repairs; the rewrites are guarded, so they agree. And every
// gateway that trusts copies looks at the registrations every few
// heartbeats: an older gateway registered moves the store back to 2.

// guardEvery is how many heartbeats apart a gateway that trusts copies
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

// repairQueue bounds the users waiting for their copies to be rewritten;
// beyond it the remedy is the registrations' check (guardCopies), which
// moves the store back to schema 2 while the older gateway is registered,
// and the operator's next upgrade, which rewrites every copy.
const repairQueue = 1024

// queueRepairs hands the users written without their copies to the
// repairer.
func (v *Verifier) queueRepairs(users [][2]string) {
	for _, u := range users {
		select {
		case v.repairs <- u:
		default:
			v.log.Warn("too many users written without their copies to repair now: stop every gateway of an older version, then run tokengate store upgrade",
				zap.String("org", u[0]), zap.String("user", u[1]))
		}
	}
}

// repairCopies rewrites the copies of the users queued, one at a time,
// until the verifier closes.
func (v *Verifier) repairCopies() {
	defer v.wg.Done()
	for {
		select {
		case <-v.ctx.Done():
			return
		case u := <-v.repairs:
			ctx, cancel := context.WithTimeout(v.ctx, v.directoryLoadTimeout())
			wrote, err := v.store.Recopy(ctx, u[0], u[1])
			cancel()
			if err != nil {
				if v.ctx.Err() == nil {
					v.log.Warn("could not rewrite the copies of a user written by an older gateway", zap.String("org", u[0]),
						zap.String("user", u[1]), zap.Error(err))
				}
				continue
			}
			if !wrote {
				continue // current already: another gateway repaired it, or a user without tokens
			}
			v.changes.repairs.Add(1)
			v.log.Info("copies of a user written by an older gateway rewritten", zap.String("org", u[0]), zap.String("user", u[1]))
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
		n, err := v.store.SweepCopies(ctx)
		switch {
		case err != nil && v.ctx.Err() == nil:
			v.log.Debug("copies not swept yet; cold lookups read records and users", zap.Error(err))
		case n > 0:
			v.changes.repairs.Add(int64(n))
			v.log.Warn("copies of users written by an older gateway while no gateway of this version watched rewritten",
				zap.Int("users", n))
		}
	})
}
