package verify

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// A gateway that starts, or whose watch lost its history, holds no current
// verdict: without help its whole active population would meet the store
// cold at once. Warming reads the identities of the tokens used within
// cache_ttl (the last-use times say which), newest first and up to
// cache_entries, store.usedBatch of them per etcd request, while the
// gateway serves. Readiness waits for the first warming after a start, at
// most warmReadyBound, so that a load balancer sends traffic to a warm
// gateway; warming after a lost history does not touch readiness. A token
// a request needs before its turn is looked up as usual; one being looked
// up is not read twice (warming shares the lookup's flight).

const (
	// warmWorkers is how many warming requests are in flight at once.
	warmWorkers = 4
	// warmFor bounds one warming, whatever etcd does.
	warmFor = time.Minute
	// recentPage is how many last-use times one request lists (about
	// 2 MB). Large, because etcd 3.4 walks the whole rest of a range to
	// count it for every page: pages of 1 000 take four times as long
	// over 100 000 keys.
	recentPage = 20_000
)

// warmReadyBound is the longest readiness waits for the first warming; a
// variable for tests.
var warmReadyBound = 10 * time.Second

// warmChunk is how many tokens a worker takes at a time: a few requests'
// worth, each chunk judged by the revision the watch had applied before it.
const warmChunk = 240

// startWarming begins a warming in the background, ending one still under
// way; the watch calls it each time it starts over.
func (v *Verifier) startWarming(stop *context.CancelFunc) {
	if v.cfg.NoWarmStart {
		return
	}
	if *stop != nil {
		(*stop)()
	}
	ctx, cancel := context.WithTimeout(v.ctx, warmFor)
	*stop = cancel
	v.warmBegan.CompareAndSwap(0, v.cfg.now().UnixNano())
	v.wg.Go(func() {
		defer cancel()
		defer v.warmPending.Store(false)
		if v.beforeWarm != nil {
			v.beforeWarm()
		}
		v.warm(ctx)
	})
}

// warmingFirst reports whether readiness should wait for the first
// warming: under way, within warmReadyBound of its start.
func (v *Verifier) warmingFirst() bool {
	if !v.warmPending.Load() {
		return false
	}
	began := v.warmBegan.Load()
	return began == 0 || v.cfg.now().UnixNano()-began < int64(warmReadyBound)
}

// warm loads recently used tokens into the cache; see above.
func (v *Verifier) warm(ctx context.Context) {
	began := v.cfg.now()
	uses, err := v.store.RecentlyUsed(ctx, began.Add(-v.cfg.CacheTTL), v.cfg.CacheEntries, recentPage)
	if err != nil {
		v.log.Warn("cache not warmed: the recently used tokens could not be listed; they are looked up as requests need them",
			zap.Duration("took", v.cfg.now().Sub(began)), zap.Error(err))
		return
	}
	if len(uses) == 0 {
		return
	}
	listed := v.cfg.now().Sub(began)
	var next, loaded atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range warmWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				from := int(next.Add(warmChunk)) - warmChunk
				if from >= len(uses) {
					return
				}
				chunk := uses[from:min(from+warmChunk, len(uses))]
				mark := v.changes.mark()
				err := v.store.LookupUsed(ctx, chunk, v.dir, func(i int, h token.Hash, l *store.Lookup) {
					if v.warmOne(h, l, mark, chunk[i].At) {
						loaded.Add(1)
					}
				})
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := loaded.Load()
	v.stats.warmed.Add(n)
	took := v.cfg.now().Sub(began)
	if errp := failed.Load(); errp != nil || ctx.Err() != nil {
		err := ctx.Err()
		if errp != nil {
			err = *errp
		}
		v.log.Warn("cache warming stopped; the rest are looked up as requests need them",
			zap.Int64("tokens", n), zap.Int("recently_used", len(uses)), zap.Duration("took", took), zap.Error(err))
		return
	}
	v.log.Info("cache warmed with recently used tokens",
		zap.Int64("tokens", n), zap.Int("recently_used", len(uses)), zap.Duration("took", took),
		zap.Duration("listing_took", listed))
}

// warmOne caches the verdict of one warmed lookup, unless the cache holds
// a current one already. It runs as the token's flight, so a request for
// the token meanwhile waits for it rather than reading etcd too, and a
// lookup under way is not overtaken by an older read. It reports whether
// the entry was cached.
func (v *Verifier) warmOne(h token.Hash, l *store.Lookup, mark readMark, usedAt time.Time) bool {
	kind, ok := token.HintKind(l.Token.Hint)
	if !ok {
		return false
	}
	key := cacheKey(h)
	var cached bool
	v.flights.Do(string(h[:]), func() (any, error) {
		if old, _ := v.identities.Get(key); v.currentFor(old, h) {
			return old, nil
		}
		e := v.entryFrom(h, kind, l, mark)
		if !v.changes.current(e) {
			return v.load(h, kind) // changed since: whoever waits reads afresh
		}
		if e.identity != nil {
			// Noted as used when it was, so the first request does not
			// write a last-use time again at once.
			e.identity.lastUse.Store(usedAt.Unix())
		}
		v.insert(key, e)
		cached = true
		return e, nil
	})
	return cached
}
