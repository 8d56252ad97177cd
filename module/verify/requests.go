package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/usage"
)

// rollupEvery is how often a gateway writes the day rollups of the users
// whose requests it counted since. Each write replaces a user's day, so
// etcd keeps one old copy a write until it compacts (hourly): every 5
// minutes keeps that history at 12 copies an hour per busy user.
const rollupEvery = 5 * time.Minute

// rollups are the gateway's day books of request counts and the name its
// rollups are written under: random per verifier, so gateways (and one
// gateway's runs) never write each other's keys.
type rollups struct {
	mu      sync.Mutex // one flush at a time
	books   *usage.Books
	gateway string
}

func (r *rollups) init() {
	var b [6]byte
	_, _ = rand.Read(b[:])
	r.books = usage.NewBooks()
	r.gateway = hex.EncodeToString(b[:])
}

// CountRequest counts one request of id's user, made at a time: the
// account it was for ("" when none was decided), its method and path, the
// policy statement that admitted it, and its outcome (usage.Admitted or a
// refusal's code).
func (v *Verifier) CountRequest(id *Identity, at time.Time, account, method, path, statement, outcome string) {
	v.requests.Count(id.Org, id.UserID, at, usage.Cell{
		Account: account, Method: usage.Method(method), Route: usage.Route(path),
		Statement: statement, Outcome: outcome,
	})
}

// FlushRequests moves the counts into the day books and writes the
// rollups that changed; what could not be written is written next time.
func (v *Verifier) FlushRequests(ctx context.Context) error {
	v.rollups.mu.Lock()
	defer v.rollups.mu.Unlock()
	now := v.cfg.now()
	books := v.rollups.books
	books.Add(v.requests.Harvest(now))
	changed := books.Changed()
	n, err := v.store.PutUsage(ctx, v.rollups.gateway, changed)
	books.Written(changed[:n], now)
	return err
}

// flushRequests is FlushRequests for the background loop: a failure is
// logged, and the counts wait for the next turn.
func (v *Verifier) flushRequests(ctx context.Context) {
	if err := v.FlushRequests(ctx); err != nil && ctx.Err() == nil {
		v.log.Warn("writing request counts failed; they are kept for the next attempt", zap.Error(err))
	}
}
