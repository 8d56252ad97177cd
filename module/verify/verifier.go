package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
	"github.com/tokengate/tokengate/module/usage"
)

// Defaults of Config.
const (
	DefaultCacheEntries = 100_000
	// MaxCacheEntries bounds cache_entries: about 9 GB of identities at
	// 0.9 KB each; more would fail to allocate, taking the process down.
	MaxCacheEntries      = 10_000_000
	DefaultCacheTTL      = 5 * time.Minute
	DefaultNegativeTTL   = 10 * time.Second
	DefaultMaxStale      = time.Minute
	DefaultLookupTimeout = 2 * time.Second
)

// Config tunes a Verifier. Zero fields take the defaults.
type Config struct {
	// CacheEntries bounds the verified identities held in memory (and,
	// separately, the unknown tokens remembered).
	CacheEntries int
	// CacheTTL bounds how long a cached identity is trusted before it is
	// read again, whatever the watch says.
	CacheTTL time.Duration
	// NegativeTTL is how long an unknown well-formed token is remembered.
	NegativeTTL time.Duration
	// MaxStale is how long after the last sign of life from etcd cached
	// identities are still honoured. It must not exceed CacheTTL.
	MaxStale time.Duration
	// LookupTimeout bounds one read of a token from etcd.
	LookupTimeout time.Duration
	// FilterFallbacks is how many tokens per second that the filter of
	// issued tokens says were never issued are looked up in etcd anyway
	// (up to as many at once): one may have been issued a moment ago on
	// another gateway, its watch event still on its way here. Beyond it
	// they are refused from memory. A flood of forged tokens spends the
	// budget; a real one then meets at most a refusal until its watch
	// event arrives, milliseconds later. Default: 20.
	FilterFallbacks int
	// NoWarmStart: after a start or a lost watch history, tokens are read
	// only as requests present them, not warmed ahead (warm.go).
	NoWarmStart bool
	// Logger receives the watch's state changes and the store's health:
	// ready, unreachable, reachable again. Default: none.
	Logger *zap.Logger `json:"-"`
	// StoreName says in logs which store this is, e.g. "etcd at
	// https://10.0.0.1:2379 (dial timeout 5s)".
	StoreName string `json:"-"`
	// ReminderInterval is how often an outage of the store is logged
	// again while it lasts. Default: 1m.
	ReminderInterval time.Duration `json:"-"`

	// now is the clock; tests replace it.
	now func() time.Time
}

// Validate checks the configuration as New would, without changing it.
func (c Config) Validate() error {
	return c.fill()
}

func (c *Config) fill() error {
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.MaxStale == 0 {
		c.MaxStale = DefaultMaxStale
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	if c.FilterFallbacks == 0 {
		c.FilterFallbacks = DefaultFilterFallbacks
	}
	if c.ReminderInterval == 0 {
		c.ReminderInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	switch {
	case c.CacheEntries < 1:
		return fmt.Errorf("cache_entries must not be negative (0 means the default, %d)", DefaultCacheEntries)
	case c.CacheEntries > MaxCacheEntries:
		return fmt.Errorf("cache_entries must be at most %d (about 0.9 KB of memory each)", MaxCacheEntries)
	case c.CacheTTL < time.Second:
		return errors.New("cache_ttl must be at least 1s")
	case c.NegativeTTL < 0:
		return errors.New("negative_ttl must not be negative")
	case c.MaxStale < time.Second:
		return errors.New("max_stale must be at least 1s")
	case c.MaxStale > c.CacheTTL:
		// Otherwise a change made during an outage could outlive cache_ttl,
		// the bound the gateway promises.
		return fmt.Errorf("max_stale (%s) must not exceed cache_ttl (%s)", c.MaxStale, c.CacheTTL)
	case c.LookupTimeout <= 0:
		return errors.New("lookup timeout must be positive")
	case c.FilterFallbacks < 0:
		return errors.New("filter fallbacks must not be negative")
	}
	return nil
}

// Verifier verifies tokens against the store, through the cache.
type Verifier struct {
	store *store.Store
	cfg   Config
	log   *zap.Logger

	identities *ristretto.Cache[uint64, *entry] // known tokens
	unknowns   *ristretto.Cache[uint64, *entry] // well-formed tokens that do not exist
	flights    singleflight.Group

	changes changeLog
	usage   lastUses
	// requests counts what each user's requests did (module/usage);
	// rollups are its day books, written once a minute under gateway.
	requests *usage.Counter
	rollups  rollups

	// The filter of issued tokens (filter.go): its state, the budget of
	// lookups for tokens it refuses, requests for a build, one build at a
	// time.
	filter digestFilter
	// dir holds every account and policy, kept by the watch: a cold
	// lookup reads only the token and its user from etcd.
	dir          *store.Directory
	fallbacks    fallbackBudget
	filterWanted chan struct{}
	filterBuild  sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats counters
	down  atomic.Bool // the store is known to be unreachable (monitor)

	// Fault injection for tests, nil otherwise. afterLookup runs between
	// reading etcd and caching the result (the stale-fill race);
	// beforeWatch runs before each watch starts (to hold the watch down);
	// beforeFilterBuild before each build of the filter (with the build's
	// context) and beforeFilterInstall between its read of etcd and putting
	// it in place; beforeRepair before each repair of a user's copies;
	// afterSyncCheck between the heartbeat's read of the cluster's revision
	// and its use; set these through newWithHooks, before the builder
	// starts.
	afterLookup         func()
	beforeRepair        func()
	afterSyncCheck      func()
	beforeWatch         func()
	beforeWarm          func()
	beforeFilterBuild   func(ctx context.Context)
	beforeFilterInstall func()

	// The first warming (warm.go): whether it is still to finish, and
	// when it began (unix ns, 0 before); readiness waits for it, within
	// warmReadyBound.
	warmPending atomic.Bool
	warmBegan   atomic.Int64
	// dirReloading: a reload of the directory is under way.
	dirReloading atomic.Bool
	// sweeping: a sweep of the copies is under way (sweepCopies).
	sweeping atomic.Bool
	// repairs are the users whose copies the watch found stale, and
	// suspects those not yet repaired (repair.go).
	repairs  chan store.WrittenAlone
	suspects suspects
	// lookedUpAt is the highest revision a lookup read at.
	lookedUpAt atomic.Int64
	// wentBack: the heartbeat saw the cluster's revision below what the
	// watch had applied; the watch starts afresh (startAfresh).
	wentBack atomic.Bool
	// setsDropped counts cache inserts ristretto dropped.
	setsDropped atomic.Int64

	watchMu     sync.Mutex
	watchCancel context.CancelFunc
	// beat asks the heartbeat to check sync now rather than at its next
	// tick: someone waits for a revision the watch has not reached.
	beat chan struct{}
}

// entry is one cached verdict: an identity, or "unknown" when identity is
// nil. Entries are immutable once cached.
type entry struct {
	hash     token.Hash
	rev      int64     // etcd revision the verdict was read at
	filledAt time.Time // when it was read
	deps     []uint32  // change-log buckets of the keys it was derived from
	identity *Identity
	// The last nDir deps came from the directory, as of dirRev (at most
	// rev): a change to them after dirRev is news.
	dirRev int64
	nDir   uint16
	epoch  int64 // the change log's epoch as the read began
}

type counters struct {
	hits, misses, unknownHits, lookups, staleServed, unavailable, warmed atomic.Int64

	filterRefused, filterFallbacks, filterBuilds, filterBuildTime atomic.Int64
}

// Stats counts what the verifier did.
type Stats struct {
	// Hits are verifications answered from the cache (identities and
	// remembered unknown tokens alike); Misses went to the store.
	Hits, Misses int64
	// UnknownHits are the hits on remembered unknown tokens.
	UnknownHits int64
	// Lookups are reads of the store (each a store.Lookup).
	Lookups int64
	// StaleServed counts identities honoured past cache_ttl because etcd
	// could not be reached (within max_stale).
	StaleServed int64
	// WatchRevision is the etcd revision up to which changes are applied.
	WatchRevision int64
	// Flushes counts how often the cache was dropped whole (compaction).
	Flushes int64
	// WatchRestarts counts watches started after the first.
	WatchRestarts int64
	// CacheSetsDropped counts verdicts the cache dropped instead of
	// storing (its insert buffer full): each costs a lookup again.
	CacheSetsDropped int64
	// CopiesRepaired counts users whose copies under their tokens'
	// digests this gateway rewrote, an older gateway having written the
	// users alone.
	CopiesRepaired int64
	// Warmed counts identities cached by warming (warm.go): read before a
	// request asked for them, after a start or a lost watch history.
	Warmed int64

	// FilterRefused counts tokens refused from memory: the filter of issued
	// tokens says they were never issued; no lookup was spent.
	FilterRefused int64
	// FilterFallbacks counts tokens the filter said were never issued that
	// were looked up anyway, within Config.FilterFallbacks (or sharing a
	// lookup of the same token under way).
	FilterFallbacks int64
	// FilterBuilds counts filters built from a scan of every token digest.
	FilterBuilds int64
	// FilterBuildTime is how long the latest build took, scan included.
	FilterBuildTime time.Duration
	// FilterKeys is how many token digests the filter holds: those it was
	// built from and those created since (FilterOverlay).
	FilterKeys, FilterOverlay int64
	// FilterBytes is the filter's memory: its fingerprints and its
	// overlay.
	FilterBytes int64
	// FilterRevision is the etcd revision the filter was built at.
	FilterRevision int64
	// FilterUsable: the filter may refuse tokens now (complete, and the
	// watch in sync within max_stale).
	FilterUsable bool
}

// New starts a verifier on the store: it begins watching at once. Close
// stops it.
func New(s *store.Store, cfg Config) (*Verifier, error) {
	return newWithHooks(s, cfg, nil)
}

// newWithHooks is New, letting tests set fault injection on the verifier
// before anything starts.
func newWithHooks(s *store.Store, cfg Config, hooks func(v *Verifier)) (*Verifier, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	newCache := func() (*ristretto.Cache[uint64, *entry], error) {
		return ristretto.NewCache(&ristretto.Config[uint64, *entry]{
			NumCounters:        int64(cfg.CacheEntries) * 10,
			MaxCost:            int64(cfg.CacheEntries),
			BufferItems:        64,
			IgnoreInternalCost: true,
			OnEvict:            func(*ristretto.Item[*entry]) { metrics.CacheEvictions.Inc() },
		})
	}
	identities, err := newCache()
	if err != nil {
		return nil, err
	}
	unknowns, err := newCache()
	if err != nil {
		identities.Close()
		return nil, err
	}
	v := &Verifier{
		beat:       make(chan struct{}, 1),
		dir:        s.NewDirectory(),
		store:      s,
		cfg:        cfg,
		log:        cfg.Logger,
		identities: identities,
		unknowns:   unknowns,
	}
	v.changes.init()
	// A copy holds what its writer wrote; what an older gateway wrote
	// without copies is known only to a watch in sync (repair.go).
	s.SetCopyGate(v.copyAllowed)
	v.filter.init()
	v.requests = usage.NewCounter()
	v.rollups.init()
	v.fallbacks.init(cfg.FilterFallbacks, cfg.now())
	v.filterWanted = make(chan struct{}, 1)
	v.warmPending.Store(!cfg.NoWarmStart)
	if hooks != nil {
		hooks(v)
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.repairs = make(chan store.WrittenAlone, repairQueue)
	v.wg.Add(5)
	go v.watch()
	go v.recordUse()
	go v.monitor()
	go v.buildFilters()
	go v.repairCopies()
	return v, nil
}

// Close stops the watch and releases the cache.
func (v *Verifier) Close() {
	v.cancel()
	v.wg.Wait()
	v.identities.Close()
	v.unknowns.Close()
}

// Stats returns the verifier's counters.
func (v *Verifier) Stats() Stats {
	f := v.filter.state()
	return Stats{
		Hits:             v.stats.hits.Load(),
		Misses:           v.stats.misses.Load(),
		UnknownHits:      v.stats.unknownHits.Load(),
		Lookups:          v.stats.lookups.Load(),
		StaleServed:      v.stats.staleServed.Load(),
		WatchRevision:    v.changes.applied.Load(),
		Flushes:          v.changes.flushes.Load(),
		WatchRestarts:    v.changes.restarts.Load(),
		CopiesRepaired:   v.changes.repairs.Load(),
		CacheSetsDropped: v.setsDropped.Load(),
		Warmed:           v.stats.warmed.Load(),

		FilterRefused:   v.stats.filterRefused.Load(),
		FilterFallbacks: v.stats.filterFallbacks.Load(),
		FilterBuilds:    v.stats.filterBuilds.Load(),
		FilterBuildTime: time.Duration(v.stats.filterBuildTime.Load()),
		FilterKeys:      f.keys,
		FilterOverlay:   f.overlay,
		FilterBytes:     f.bytes,
		FilterRevision:  f.revision,
		FilterUsable:    f.complete && v.changes.newsWithin(v.cfg.now(), v.cfg.MaxStale),
	}
}

// Entries is how many verdicts the cache holds (identities and unknown
// tokens).
func (v *Verifier) Entries() int64 {
	held := func(c *ristretto.Cache[uint64, *entry]) int64 { return c.MaxCost() - c.RemainingCost() }
	return held(v.identities) + held(v.unknowns)
}

// SyncAge is how long ago the watch was last known to be in sync with etcd.
func (v *Verifier) SyncAge() time.Duration {
	n := v.changes.newsAt.Load()
	if n == 0 {
		return 0
	}
	return v.cfg.now().Sub(time.Unix(0, n))
}

// Reachable reports whether etcd has been heard from recently: the watch
// was in sync within a few heartbeats.
func (v *Verifier) Reachable() bool {
	return v.changes.newsAt.Load() != 0 && v.SyncAge() < max(3*v.heartbeatInterval(), 2*time.Second)
}

// Config returns the configuration in effect, defaults filled in.
func (v *Verifier) Config() Config { return v.cfg }

// Verify returns the identity behind a bearer token.
//
// Errors: ErrMalformed (refused offline), ErrUnknown, ErrExpired,
// ErrDisabled, ErrUnavailable (the store cannot answer and neither the
// cache nor the filter of issued tokens may). The returned identity is
// shared and must not be modified.
func (v *Verifier) Verify(ctx context.Context, tok string) (*Identity, error) {
	kind, err := token.Parse(tok)
	if err != nil {
		return nil, ErrMalformed
	}
	h := token.Sum(tok)
	key := cacheKey(h)
	now := v.cfg.now()

	var fallback *entry
	if e, _ := v.identities.Get(key); v.currentFor(e, h) {
		if v.freshIdentity(e, now) {
			v.stats.hits.Add(1)
			metrics.CacheHits.Inc()
			return v.verdict(e, now)
		}
		// Past cache_ttl, or etcd has been silent too long: read again, but
		// keep the entry to fall back on should etcd not answer.
		fallback = e
	}
	// No identity cached: the filter of issued tokens may know the token
	// was never issued. It may have been issued a moment ago on another
	// gateway, so a few such tokens a second are looked up anyway
	// (requests for one already being looked up share its lookup); the
	// rest, and all of them while etcd is known down, are refused here,
	// without a second cache read.
	refused := fallback == nil && v.filterRefuses(key, now)
	if !refused && v.rememberedUnknown(h, key, now) {
		return nil, ErrUnknown
	}
	if refused {
		admitted := admitNone
		if !v.down.Load() {
			admitted = v.fallbacks.admit(key, now)
		}
		if admitted == admitCached {
			if e, ok := v.cachedVerdict(h, key, now); ok {
				v.stats.hits.Add(1)
				metrics.CacheHits.Inc()
				return v.verdict(e, now)
			}
			admitted = admitNone
		}
		if admitted == admitNone {
			v.stats.filterRefused.Add(1)
			metrics.FilterRefused.Inc()
			return nil, ErrUnknown
		}
		if admitted == admitLookup {
			defer func() { v.fallbacks.done(key, v.cfg.now()) }()
			// A verdict remembered from an earlier lookup answers first.
			if v.rememberedUnknown(h, key, now) {
				return nil, ErrUnknown
			}
		}
		v.stats.filterFallbacks.Add(1)
		metrics.FilterFallbacks.Inc()
	}
	return v.lookUp(ctx, h, kind, now, refused, fallback)
}

// lookUp answers a token the cache could not: it reads etcd (unless etcd
// is known down), or falls back — on the filter's "never issued" when
// the token was refused by it (refused), on the entry past cache_ttl
// (fallback) while the watch is in sync within max_stale.
func (v *Verifier) lookUp(ctx context.Context, h token.Hash, kind token.Kind, now time.Time, refused bool, fallback *entry) (*Identity, error) {
	v.stats.misses.Add(1)
	metrics.CacheMisses.Inc()

	var (
		e   *entry
		err error
	)
	if v.down.Load() && !v.Reachable() {
		// etcd is known to be unreachable (the monitor) and the watch
		// has not heard from it since: answer now rather than hold the
		// request for a lookup's timeout. Once the watch is in sync
		// again lookups resume, without waiting for the monitor.
		err = fmt.Errorf("%w: etcd is unreachable", ErrUnavailable)
	} else {
		e, err = v.fill(ctx, h, kind)
	}
	if err != nil {
		if refused && errors.Is(err, ErrUnavailable) {
			// The filter, in sync within max_stale, said never issued.
			v.stats.filterRefused.Add(1)
			metrics.FilterRefused.Inc()
			return nil, ErrUnknown
		}
		if errors.Is(err, ErrUnavailable) {
			if fallback != nil && v.changes.inSync(fallback, now, v.cfg.MaxStale) {
				v.stats.staleServed.Add(1)
				return v.verdict(fallback, now)
			}
			v.stats.unavailable.Add(1)
		}
		return nil, err
	}
	return v.verdict(e, now)
}

// cachedVerdict is the verdict the cache holds for digest h, when current
// and fresh: an identity, or "unknown".
func (v *Verifier) cachedVerdict(h token.Hash, key uint64, now time.Time) (*entry, bool) {
	if e, _ := v.identities.Get(key); v.currentFor(e, h) && v.freshIdentity(e, now) {
		return e, true
	}
	if e := v.unknownEntry(h, key, now); e != nil {
		return e, true
	}
	return nil, false
}

// unknownEntry is the cached "unknown" verdict of digest h, when current
// and within negative_ttl; else nil.
func (v *Verifier) unknownEntry(h token.Hash, key uint64, now time.Time) *entry {
	if e, _ := v.unknowns.Get(key); v.currentFor(e, h) && v.freshUnknown(e, now) {
		return e
	}
	return nil
}

// rememberedUnknown reports, counting the hit, whether the token is
// remembered as unknown within negative_ttl.
func (v *Verifier) rememberedUnknown(h token.Hash, key uint64, now time.Time) bool {
	if v.unknownEntry(h, key, now) == nil {
		return false
	}
	v.stats.hits.Add(1)
	v.stats.unknownHits.Add(1)
	metrics.CacheHits.Inc()
	return true
}

// currentFor reports whether e is the cached verdict of digest h and
// nothing it depends on changed since it was read.
func (v *Verifier) currentFor(e *entry, h token.Hash) bool {
	return e != nil && e.hash == h && v.changes.current(e)
}

// freshIdentity reports whether a current identity may answer without a
// read: within cache_ttl of its read and within max_stale of news from etcd.
func (v *Verifier) freshIdentity(e *entry, now time.Time) bool {
	return now.Sub(e.filledAt) < v.cfg.CacheTTL && v.changes.inSync(e, now, v.cfg.MaxStale)
}

// freshUnknown reports whether a current "unknown" verdict is within
// negative_ttl.
func (v *Verifier) freshUnknown(e *entry, now time.Time) bool {
	return now.Sub(e.filledAt) < v.cfg.NegativeTTL
}

// verdict is what an entry says at time now; a token found good is noted
// as used.
func (v *Verifier) verdict(e *entry, now time.Time) (*Identity, error) {
	id, err := e.verdict(now)
	if err == nil {
		v.noteUse(id, now)
	}
	return id, err
}

func (e *entry) verdict(now time.Time) (*Identity, error) {
	id := e.identity
	switch {
	case id == nil:
		return nil, ErrUnknown
	case id.disabled:
		return nil, ErrDisabled
	case !id.ExpiresAt.IsZero() && !now.Before(id.ExpiresAt):
		return nil, ErrExpired
	}
	return id, nil
}

// cacheKey is the first 8 bytes of the digest; entries also hold the whole
// digest, compared on every hit.
func cacheKey(h token.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// fill reads a token from the store, once for all concurrent callers, and
// caches the verdict. The read is not tied to the caller's context (others
// may be waiting for it), but the caller stops waiting when its context ends.
func (v *Verifier) fill(ctx context.Context, h token.Hash, kind token.Kind) (*entry, error) {
	ch := v.flights.DoChan(string(h[:]), func() (any, error) { return v.load(h, kind) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*entry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// load is the body of a fill.
func (v *Verifier) load(h token.Hash, kind token.Kind) (*entry, error) {
	key := cacheKey(h)
	// A flight that just finished may have cached the answer between our
	// caller's miss and this flight's start: look again before reading.
	now := v.cfg.now()
	old, _ := v.identities.Get(key)
	if v.currentFor(old, h) && v.freshIdentity(old, now) {
		return old, nil
	}
	if e := v.unknownEntry(h, key, now); e != nil {
		return e, nil
	}

	// A refill replaces the identity object; its last noted use carries
	// over, so a busy token is still noted at most once per UseInterval.
	var lastUse int64
	if old != nil && old.hash == h && old.identity != nil {
		lastUse = old.identity.lastUse.Load()
	}

	ctx, cancel := context.WithTimeout(v.ctx, v.cfg.LookupTimeout)
	defer cancel()
	// If the data changed while we read it (the watch already applied a
	// newer revision of one of its keys), read again; give up caching after
	// a few rounds of heavy churn and answer with the latest read. A copy
	// whose user the watch saw written without copies meanwhile is never
	// the answer: the next read goes to the records.
	var e *entry
	for round := 0; round < 4; round++ {
		var suspect bool
		var err error
		if e, suspect, err = v.lookUpOnce(ctx, h, kind, lastUse); err != nil {
			return nil, err
		}
		switch {
		case suspect:
			e = nil
		case v.changes.current(e):
			v.insert(key, e)
			return e, nil
		case round >= 2:
			return e, nil
		}
	}
	if e == nil {
		return nil, fmt.Errorf("%w: the user's copies keep being written without them", ErrUnavailable)
	}
	return e, nil
}

// lookUpOnce reads the data behind digest h once; suspect says it came
// from a copy of a user the watch saw written without copies.
func (v *Verifier) lookUpOnce(ctx context.Context, h token.Hash, kind token.Kind, lastUse int64) (e *entry, suspect bool, err error) {
	v.stats.lookups.Add(1)
	// The directory holds at least what the watch had applied by now.
	mark := v.changes.mark()
	l, err := v.store.LookupTokenIn(ctx, h, v.dir)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, false, err // the store says so already
		}
		return nil, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	v.lookedUp(l.Revision)
	if v.afterLookup != nil {
		v.afterLookup()
	}
	e = v.entryFrom(h, kind, l, mark)
	if e.identity != nil {
		e.identity.lastUse.Store(lastUse)
	}
	return e, l.FromCopy && v.suspects.has(l.User.Org, l.User.ID), nil
}

// lookedUp notes that a lookup read at rev (forgetLookups).
func (v *Verifier) lookedUp(rev int64) {
	for {
		at := v.lookedUpAt.Load()
		if rev <= at || v.lookedUpAt.CompareAndSwap(at, rev) {
			return
		}
	}
}

// entryFrom is the cache entry of a lookup of digest h, presented as a
// token of the given kind; mark is the change log as the lookup began.
func (v *Verifier) entryFrom(h token.Hash, kind token.Kind, l *store.Lookup, mark readMark) *entry {
	e := &entry{
		hash:     h,
		rev:      l.Revision,
		dirRev:   l.Revision,
		filledAt: v.cfg.now(),
		identity: identityFrom(l, kind),
		deps:     v.changes.buckets(l.Keys),
		epoch:    mark.epoch,
	}
	if l.FromDirectory {
		// Its accounts and policies may be as old as what the watch had
		// applied: any change to them after that is news for the entry.
		e.dirRev = min(mark.applied, l.Revision)
		e.nDir = uint16(min(len(l.DirectoryKeys), math.MaxUint16))
		e.deps = append(e.deps, v.changes.buckets(l.DirectoryKeys[:e.nDir])...)
	}
	return e
}

func (v *Verifier) insert(key uint64, e *entry) {
	cache, ttl := v.identities, v.cfg.CacheTTL+v.cfg.MaxStale
	if e.identity == nil {
		cache, ttl = v.unknowns, v.cfg.NegativeTTL
		v.identities.Del(key)
	} else {
		v.unknowns.Del(key)
	}
	if ttl <= 0 {
		return
	}
	if !cache.SetWithTTL(key, e, 1, ttl) {
		// Ristretto drops a set when its buffer is full (contention): the
		// next request for the token looks it up again.
		v.setsDropped.Add(1)
		return
	}
	// Make the entry visible before the flight ends, so that callers
	// arriving afterwards hit it rather than read etcd again
	// (TestEntryVisibleWhenVerifyReturns). Wait hands one item to
	// ristretto's goroutine and waits for it: microseconds, on a path
	// that has just waited for etcd.
	cache.Wait()
}

// Store is the store the verifier reads.
func (v *Verifier) Store() *store.Store { return v.store }
