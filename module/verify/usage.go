package verify

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/store"
)

// UseInterval is the finest resolution of a token's last_used_at: a token
// is recorded at most once per interval, however busy it is.
const UseInterval = time.Minute

// usageFlushEvery is how often recorded use is written to the store.
const usageFlushEvery = 10 * time.Second

// lastUses collects which tokens were used, for last_used_at, without an etcd
// write per request.
type lastUses struct {
	mu      sync.Mutex
	pending map[string]*store.Use // by token ID
}

// noteUse records that id's token was used at now. On the request path it
// costs an atomic load; once per UseInterval per token it takes a lock.
func (v *Verifier) noteUse(id *Identity, now time.Time) {
	t := now.Unix()
	prev := id.lastUse.Load()
	if t-prev < int64(UseInterval/time.Second) || !id.lastUse.CompareAndSwap(prev, t) {
		return
	}
	v.usage.mu.Lock()
	u := v.usage.pendingFor(id, now)
	u.At = now
	v.usage.mu.Unlock()
}

// pendingFor returns the use to be written for id's token, made (at now)
// if there is none yet; the caller holds mu.
func (p *lastUses) pendingFor(id *Identity, now time.Time) *store.Use {
	if p.pending == nil {
		p.pending = make(map[string]*store.Use)
	}
	u := p.pending[id.TokenID]
	if u == nil {
		u = &store.Use{Org: id.Org, User: id.UserID, Token: id.TokenID, At: now}
		p.pending[id.TokenID] = u
	}
	return u
}

// ClientDue reports whether the client of a request carrying id's token is
// to be noted (NoteClient): once per UseInterval per token, whoever asks
// first. It costs an atomic load.
func (id *Identity) ClientDue(now time.Time) bool {
	t := now.Unix()
	prev := id.lastClient.Load()
	return t-prev >= int64(UseInterval/time.Second) && id.lastClient.CompareAndSwap(prev, t)
}

// NoteClient records where id's token was just used from, written with
// its last-use time.
func (v *Verifier) NoteClient(id *Identity, ip, userAgent string, now time.Time) {
	v.usage.mu.Lock()
	v.usage.pendingFor(id, now).Client = &store.Client{IP: ip, UserAgent: userAgent}
	v.usage.mu.Unlock()
}

// flushUse writes the recorded use to the store.
func (v *Verifier) flushUse(ctx context.Context) {
	v.usage.mu.Lock()
	pending := v.usage.pending
	v.usage.pending = nil
	v.usage.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	uses := make([]store.Use, 0, len(pending))
	for _, u := range pending {
		uses = append(uses, *u)
	}
	if err := v.store.RecordUses(ctx, uses); err != nil {
		// Losing a last_used_at update is harmless; say so and move on.
		v.log.Warn("recording token use failed", zap.Int("tokens", len(uses)), zap.Error(err))
	}
}

// recordUse writes last-use times and request counts periodically until
// the verifier closes, then once more, within 2 s whatever etcd does.
func (v *Verifier) recordUse() {
	defer v.wg.Done()
	t := time.NewTicker(usageFlushEvery)
	defer t.Stop()
	r := time.NewTicker(rollupEvery)
	defer r.Stop()
	for {
		select {
		case <-t.C:
			v.flushUse(v.ctx)
		case <-r.C:
			v.flushRequests(v.ctx)
		case <-v.ctx.Done():
			// Both within the same bound, side by side: 2 s, or a
			// quarter of a second when etcd is known unreachable (what
			// cannot be written then is lost rather than holding a stop
			// or a reload).
			bound := 2 * time.Second
			if v.down.Load() {
				bound = 250 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			var wg sync.WaitGroup
			wg.Go(func() { v.flushUse(ctx) })
			v.flushRequests(ctx)
			wg.Wait()
			cancel()
			return
		}
	}
}

// FlushUse writes recorded token use now; for tests and shutdown paths.
func (v *Verifier) FlushUse(ctx context.Context) { v.flushUse(ctx) }
