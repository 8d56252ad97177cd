package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/FastFilter/xorfilter"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/token"
)

// The filter of issued tokens lets a token that was never issued be refused
// from memory. Anyone can mint well-formed tokens (the checksum is public);
// without the filter each costs an etcd lookup.
//
// It is a binary fuse filter (8-bit fingerprints: about 1.13 to 1.3 bytes
// per token, false positives 1 in 256) of the first 8 bytes of every token
// digest in etcd at one revision, plus an overlay (overlay.go) of the
// digests of tokens created since, fed by the watch: room for
// max(1024, n/64) plus a quarter, 0.39 bytes per token, allocated with
// each build. From about 40 000 tokens up both take less than 2 bytes per
// token; below, the overlay's 26 kB dominate. Together they hold every
// token that exists, and some that no longer do; a "no" is certain for
// every change the watch has applied. Deleted tokens stay in until the
// next build, as false positives, which cost an ordinary lookup.
//
// A filter answers ("usable") only when it is complete and the watch is in
// sync: built at or after the revision the watch last started from (no
// change since went unseen), no token creation dropped for want of room,
// and the watch known in sync within max_stale.

const (
	// filterRefreshEvery is how often the filter is built again when
	// tokens were created or deleted since the last build: to shed deleted
	// tokens and fold the overlay into the compact filter. A deleted token
	// left in only costs one lookup per negative_ttl, so minutes are fine;
	// a build reads every token key (about 100 MB from etcd for a million
	// tokens), so ten minutes keep that under 200 kB/s per gateway.
	filterRefreshEvery = 10 * time.Minute
	// filterMinGap spaces builds: at least this long, and four times the
	// last build's duration, from the end of one to the start of the next,
	// so that builds take at most a fifth of a core however busy etcd is.
	filterMinGap = 100 * time.Millisecond
)

// DefaultFilterFallbacks is the default of Config.FilterFallbacks.
const DefaultFilterFallbacks = 20

// digestFilter is the filter of issued tokens and its overlay. Keys are
// cacheKey of the digest.
type digestFilter struct {
	mu      sync.RWMutex
	built   bool
	fuse    *xorfilter.BinaryFuse8 // nil when built over no token
	builtAt int64                  // etcd revision of the scan it was built from
	keys    int                    // distinct keys it was built from
	// needFrom: the filter is complete only if built at or after this
	// revision. The watch sets it when it starts from scratch (whatever
	// happened before is unseen); a creation the overlay had no room for
	// raises it to that creation's revision; math.MaxInt64 until the watch
	// first starts, and while it has lost its history and not started
	// again.
	needFrom int64
	overlay  overlay // tokens created after builtAt
	deletes  int     // tokens deleted since the build (approximately)
}

func (f *digestFilter) init() {
	f.overlay = newOverlay(overlayRoom(0))
	f.needFrom = math.MaxInt64
}

// overlayLimit is the overlay size beyond which a build is wanted, with n
// tokens built in.
func overlayLimit(n int) int { return max(1024, n/64) }

// overlayRoom is the most the overlay holds: room for the creations that
// arrive while a build is under way.
func overlayRoom(n int) int { return overlayLimit(n) + overlayLimit(n)/4 }

// excludes reports whether the filter is complete and says key was never
// issued.
func (f *digestFilter) excludes(key uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.built || f.builtAt < f.needFrom {
		return false
	}
	if f.fuse != nil && f.fuse.Contains(key) {
		return false
	}
	return !f.overlay.has(key)
}

// mayHold reports whether key is in the filter or the overlay, complete or
// not; for tests.
func (f *digestFilter) mayHold(key uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.overlay.has(key) || f.fuse != nil && f.fuse.Contains(key)
}

// observe applies one change of a token key the watch delivered: a creation
// (put) or deletion at revision rev. It reports whether a build is wanted
// now: the overlay or the deletions have just passed their limits, or a
// creation found no room. (A build that leaves them past their limits
// asks for the next: wantsBuild.)
func (f *digestFilter) observe(key uint64, put bool, rev int64) (build bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.built && rev <= f.builtAt {
		return false // the filter has it already
	}
	if !put {
		// The token stays in, a false positive until the next build.
		f.deletes++
		return f.built && f.deletes == f.keys/8+1
	}
	if !f.overlay.add(key, rev) {
		// No room: the filter is incomplete until built past this change.
		f.needFrom = max(f.needFrom, rev)
		return true
	}
	return f.overlay.count() == overlayLimit(f.keys)+1
}

// restarted notes that the watch started from scratch at revision rev:
// changes before it may have gone unseen.
func (f *digestFilter) restarted(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Every change the watch delivered before is at or before rev.
	f.needFrom = rev
}

// reset forgets the filter: the store went back in time (wentBack), so
// its revisions say nothing; it answers again once built anew.
func (f *digestFilter) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.built, f.fuse, f.builtAt, f.keys, f.deletes = false, nil, 0, 0, 0
	f.overlay = newOverlay(overlayRoom(0))
	f.needFrom = math.MaxInt64
}

// lostHistory notes that the watch missed changes (compaction): the filter
// may not answer until built after the watch starts again.
func (f *digestFilter) lostHistory() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.needFrom = math.MaxInt64
}

// buildStarts returns what a build needs from the current state: the
// deletions counted so far (those the build will shed) and a guess of the
// number of keys.
func (f *digestFilter) buildStarts() (deletes, keys int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.deletes, f.keys + f.overlay.count()
}

// install puts in place a filter built from a scan at revision rev: the
// overlay keeps the creations after rev; deletions counted during the build
// may be after rev, so they stay counted. It reports whether the filter is
// complete.
func (f *digestFilter) install(fuse *xorfilter.BinaryFuse8, keys int, rev int64, deletesBefore int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.built && rev < f.builtAt {
		return f.builtAt >= f.needFrom
	}
	f.built, f.fuse, f.keys, f.builtAt = true, fuse, keys, rev
	later := newOverlay(overlayRoom(keys))
	f.overlay.after(rev, func(key uint64, created int64) {
		if !later.add(key, created) {
			// Fewer tokens, less room: incomplete, as in observe.
			f.needFrom = max(f.needFrom, created)
		}
	})
	f.overlay = later
	f.deletes = max(0, f.deletes-deletesBefore)
	return f.builtAt >= f.needFrom
}

// refreshWanted reports whether tokens were created or deleted since the
// last build, or there is none yet.
func (f *digestFilter) refreshWanted() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.built || f.deletes > 0 || f.overlay.count() > 0
}

// filterState is what Stats says of the filter.
type filterState struct {
	keys, bytes, overlay int64
	revision             int64
	complete             bool
}

func (f *digestFilter) state() filterState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := filterState{
		keys:     int64(f.keys + f.overlay.count()),
		overlay:  int64(f.overlay.count()),
		bytes:    f.overlay.bytes(),
		revision: f.builtAt,
		complete: f.built && f.builtAt >= f.needFrom,
	}
	if f.fuse != nil {
		s.bytes += int64(len(f.fuse.Fingerprints))
	}
	return s
}

// fallbackBudget is a token bucket: the lookups allowed for tokens the
// filter says were never issued. It runs on the verifier's clock. Requests
// for a token being looked up share that lookup and spend nothing, so a
// burst of requests with a token just issued elsewhere costs one unit; a
// request that missed the cache just before such a lookup ended is sent
// back to the cache, which holds its verdict now.
type fallbackBudget struct {
	mu      sync.Mutex
	rate    float64 // per second; also the bucket's size
	tokens  float64
	last    time.Time
	lookups map[uint64]fallbackLookup // under way or just ended, by cache key
}

// fallbackLookup is one token's lookups past the filter.
type fallbackLookup struct {
	running int
	ended   time.Time
}

// fallbackRecent is how long after its lookup a token's verdict is looked
// for in the cache rather than refused: longer than any request takes from
// missing the cache to asking the budget.
const fallbackRecent = time.Second

// admission is the budget's answer about one token.
type admission int

const (
	admitNone   admission = iota // refused
	admitLookup                  // look it up; end with done
	admitShare                   // a lookup is under way: share it
	admitCached                  // a lookup just ended: its verdict is in the cache
)

func (b *fallbackBudget) init(rate int, now time.Time) {
	b.rate, b.tokens, b.last = float64(rate), float64(rate), now
	b.lookups = make(map[uint64]fallbackLookup)
}

// admit says whether the token with cache key key may be looked up at now.
func (b *fallbackBudget) admit(key uint64, now time.Time) admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.lookups[key]; ok {
		switch {
		case l.running > 0:
			return admitShare
		case now.Sub(l.ended) < fallbackRecent:
			return admitCached
		}
		delete(b.lookups, key)
	}
	if !b.take(now) {
		return admitNone
	}
	l := b.lookups[key]
	l.running++
	b.lookups[key] = l
	return admitLookup
}

// done ends a lookup admit allowed, at now.
func (b *fallbackBudget) done(key uint64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lookups[key]
	l.running--
	l.ended = now
	b.lookups[key] = l
	// At most rate lookups a second: the map stays small.
	for k, l := range b.lookups {
		if l.running <= 0 && now.Sub(l.ended) >= fallbackRecent {
			delete(b.lookups, k)
		}
	}
}

// take spends one lookup if the budget allows it at now; b.mu is held.
func (b *fallbackBudget) take(now time.Time) bool {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.rate, b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// filterRefuses reports whether the token with cache key key was never
// issued, on the filter's word: the filter is complete and the watch was in
// sync within max_stale.
func (v *Verifier) filterRefuses(key uint64, now time.Time) bool {
	return v.changes.newsWithin(now, v.cfg.MaxStale) && v.filter.excludes(key)
}

// noteTokenChange passes a change of a token key from the watch to the
// filter, and asks for a build when the filter wants one.
func (v *Verifier) noteTokenChange(h token.Hash, put bool, rev int64) {
	if v.filter.observe(cacheKey(h), put, rev) {
		v.wantFilter()
	}
	v.publishFilter()
}

// wantFilter asks the builder for a build, without waiting.
func (v *Verifier) wantFilter() {
	select {
	case v.filterWanted <- struct{}{}:
	default:
	}
}

// buildFilters builds the filter when it is wanted — at the start, after
// the watch starts from scratch, when the overlay or the deletions grow
// too large — and every filterRefreshEvery while tokens change, until the
// verifier closes. A failed build is tried again with backoff.
func (v *Verifier) buildFilters() {
	defer v.wg.Done()
	refresh := time.NewTicker(filterRefreshEvery)
	defer refresh.Stop()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	var ended time.Time
	var took time.Duration
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-v.filterWanted:
		case <-refresh.C:
			if !v.filter.refreshWanted() {
				continue
			}
		}
		if wait := time.Until(ended.Add(max(filterMinGap, 4*took))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-v.ctx.Done():
				t.Stop()
				return
			}
		}
		for {
			start := time.Now()
			err := v.buildFilter(v.ctx)
			ended, took = time.Now(), time.Since(start)
			if err == nil {
				bo.Reset()
				break
			}
			if v.ctx.Err() != nil {
				return
			}
			// The monitor reports outages; a failed build is only debug news.
			v.log.Debug("building the filter of issued tokens failed; trying again", zap.Error(err))
			bo.Wait(v.ctx)
		}
	}
}

// buildFilter reads every token digest at one revision and puts a filter of
// them in place. Builds run one at a time.
func (v *Verifier) buildFilter(ctx context.Context) error {
	if v.beforeFilterBuild != nil {
		v.beforeFilterBuild(ctx)
	}
	v.filterBuild.Lock()
	defer v.filterBuild.Unlock()
	start := time.Now()
	deletes, guess := v.filter.buildStarts()
	keys := make([]uint64, 0, guess+guess/8+16)
	rev, err := v.store.ScanTokenDigests(ctx, func(h token.Hash) { keys = append(keys, cacheKey(h)) })
	if err != nil {
		return err
	}
	// Digests are distinct, their first 8 bytes almost surely so; the
	// filter wants no duplicates.
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var fuse *xorfilter.BinaryFuse8
	if len(keys) > 0 {
		if fuse, err = xorfilter.PopulateBinaryFuse8(keys); err != nil {
			return fmt.Errorf("building the filter of %d token digests: %v", len(keys), err)
		}
	}
	if v.beforeFilterInstall != nil {
		v.beforeFilterInstall()
	}
	complete := v.filter.install(fuse, len(keys), rev, deletes)
	took := time.Since(start)
	v.stats.filterBuilds.Add(1)
	v.stats.filterBuildTime.Store(int64(took))
	metrics.FilterBuilds.Inc()
	v.publishFilter()
	v.log.Debug("filter of issued tokens built", zap.Int("tokens", len(keys)), zap.Int64("revision", rev),
		zap.Duration("took", took), zap.Bool("complete", complete))
	if v.filter.wantsBuild() {
		v.wantFilter()
	}
	return nil
}

// wantsBuild reports whether another build is due as things stand: the
// filter is incomplete (a creation found no room), or the creations or
// deletions since it was built are past their limits. While the watch has
// lost its history no build can be complete; its restart asks for one.
func (f *digestFilter) wantsBuild() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.needFrom == math.MaxInt64 {
		return false
	}
	return f.builtAt < f.needFrom || f.overlay.count() > overlayLimit(f.keys) || f.deletes > f.keys/8
}

// publishFilter sets the filter's gauges.
func (v *Verifier) publishFilter() {
	s := v.filter.state()
	metrics.FilterKeys.Set(float64(s.keys))
	metrics.FilterBytes.Set(float64(s.bytes))
}
