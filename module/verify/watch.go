package verify

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/metrics"
)

// bucketCount is the resolution of the change log. Two keys sharing a
// bucket only cost an extra read, never a stale answer.
const bucketCount = 1 << 16

// changeLog records, for buckets of etcd keys, the revision of the latest
// change the watch applied. It is how entries learn they are out of date
// without the cache keeping an index from keys to entries.
type changeLog struct {
	seed   maphash.Seed
	bucket [bucketCount]atomic.Int64
	// latest is the highest revision recorded in any bucket. An entry read
	// at or after it is current without touching its buckets: in a steady
	// state every hit then costs one load of a shared, cached word instead
	// of one likely cache miss per key in a 512 KiB array.
	latest atomic.Int64

	flushedAt atomic.Int64 // entries read before this revision are not current
	// epoch counts the times the log started afresh (reset): entries of
	// an earlier epoch are never current.
	epoch   atomic.Int64
	applied atomic.Int64 // changes up to this revision are applied
	// newsAt (unix nanoseconds) is the last moment the watch is known to
	// have been in sync with the cluster: every change committed before
	// then is applied. Only a linearizable read says what the cluster has
	// committed; the watch's own member may be behind the others (cut off
	// from the leader, or catching up after a pause) and still send events
	// and progress notifications, at its own revision.
	newsAt atomic.Int64

	flushes, restarts atomic.Int64
	// repairs counts users whose copies this gateway rewrote after an
	// older gateway wrote them alone (repair.go).
	repairs atomic.Int64

	mu      sync.Mutex
	advance chan struct{} // closed and replaced whenever applied grows
	// A linearizable read sent at checkAt returned checkRev: once the
	// watch has applied checkRev, it was in sync at checkAt. Zero: none.
	checkRev, checkAt int64
}

func (c *changeLog) init() {
	c.seed = maphash.MakeSeed()
	c.advance = make(chan struct{})
}

func (c *changeLog) bucketOf(key string) uint32 {
	return uint32(maphash.String(c.seed, key) & (bucketCount - 1))
}

// buckets maps the keys an entry depends on to their buckets.
func (c *changeLog) buckets(keys []string) []uint32 {
	out := make([]uint32, len(keys))
	for i, k := range keys {
		out[i] = c.bucketOf(k)
	}
	return out
}

// current reports whether nothing the entry depends on changed after it was
// read.
func (c *changeLog) current(e *entry) bool {
	if e.dirRev < c.flushedAt.Load() || e.epoch != c.epoch.Load() {
		return false
	}
	if e.dirRev >= c.latest.Load() {
		return true
	}
	exact := len(e.deps) - int(e.nDir)
	for i, b := range e.deps {
		rev := e.rev
		if i >= exact {
			rev = e.dirRev
		}
		if c.bucket[b].Load() > rev {
			return false
		}
	}
	return true
}

// inSync reports whether the entry was confirmed by etcd (read, or covered
// by a watch in sync) less than maxStale ago.
func (c *changeLog) inSync(e *entry, now time.Time, maxStale time.Duration) bool {
	known := e.filledAt.UnixNano()
	if n := c.newsAt.Load(); n > known {
		known = n
	}
	return now.UnixNano()-known < int64(maxStale)
}

// newsWithin reports whether the watch was known to be in sync less than d
// before now.
func (c *changeLog) newsWithin(now time.Time, d time.Duration) bool {
	n := c.newsAt.Load()
	return n != 0 && now.UnixNano()-n < int64(d)
}

// record applies one change; only the watch goroutine calls it.
func (c *changeLog) record(key string, rev int64) {
	// latest before the bucket keeps latest ≥ every bucket. A Verify racing
	// with this call may or may not see the change, as before; applied,
	// which WaitForRevision reads, advances only after it.
	if c.latest.Load() < rev {
		c.latest.Store(rev)
	}
	b := &c.bucket[c.bucketOf(key)]
	if b.Load() < rev {
		b.Store(rev)
	}
}

// readMark is what an entry keeps of the log as its read began.
type readMark struct {
	applied, epoch int64
}

// mark is the log as a read begins: what the watch had applied (what the
// directory held at least), and the epoch.
func (c *changeLog) mark() readMark {
	return readMark{epoch: c.epoch.Load(), applied: c.applied.Load()}
}

// reset starts the log afresh, for a store whose revisions went back
// (wentBack): every entry read so far is out of date, and no revision
// recorded means anything.
func (c *changeLog) reset() {
	c.epoch.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.bucket {
		c.bucket[i].Store(0)
	}
	c.latest.Store(0)
	c.flushedAt.Store(0)
	c.applied.Store(0)
	c.newsAt.Store(0)
	c.checkRev, c.checkAt = 0, 0
	close(c.advance)
	c.advance = make(chan struct{})
}

// flush makes every entry read before rev out of date.
func (c *changeLog) flush(rev int64) {
	if c.flushedAt.Load() < rev {
		c.flushedAt.Store(rev)
	}
	c.flushes.Add(1)
}

// synced notes that the watch has applied every change up to rev.
func (c *changeLog) synced(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied.Load() >= rev {
		return
	}
	c.applied.Store(rev)
	close(c.advance)
	c.advance = make(chan struct{})
	if c.checkRev != 0 && rev >= c.checkRev {
		c.news(c.checkAt)
		c.checkRev = 0
	}
}

// confirmed notes that a linearizable read sent at time at returned
// revision rev: once the watch has applied rev, it was in sync at at.
func (c *changeLog) confirmed(rev int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied.Load() >= rev {
		c.news(at.UnixNano())
		return
	}
	c.checkRev, c.checkAt = rev, at.UnixNano()
}

// news moves newsAt forward to at; c.mu is held.
func (c *changeLog) news(at int64) {
	if c.newsAt.Load() < at {
		c.newsAt.Store(at)
	}
}

// WaitForRevision blocks until the watch has applied every change up to
// rev, or ctx ends. After a write at rev, it makes this instance's cache
// consistent with that write.
func (v *Verifier) WaitForRevision(ctx context.Context, rev int64) error {
	for {
		v.changes.mu.Lock()
		ch := v.changes.advance
		v.changes.mu.Unlock()
		if v.changes.applied.Load() >= rev {
			return nil
		}
		// The watch hears only verdict keys: a revision made by another
		// write (a last-use time, a webhook delivery) is reached by a
		// progress notification, which the heartbeat asks for.
		select {
		case v.beat <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watch keeps the change log fed until the verifier closes.
func (v *Verifier) watch() {
	defer v.wg.Done()
	client := v.store.Client()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	var next int64                     // revision to resume from; 0: start over
	var stopWarming context.CancelFunc // the warming under way; it ends with v.ctx too
	for started := false; v.ctx.Err() == nil; started = true {
		if started {
			v.changes.restarts.Add(1)
			metrics.WatchRestarts.Inc()
		}
		if next == 0 {
			at := v.cfg.now()
			rev, err := v.currentRevision()
			if err != nil {
				// The monitor reports outages, once; each attempt is
				// only debug news.
				v.log.Debug("watch cannot start: etcd unreachable", zap.Error(err))
				bo.Wait(v.ctx)
				continue
			}
			// The directory of accounts and policies, as of rev; if it
			// cannot be read now, lookups read them from etcd until the
			// heartbeat has loaded it.
			v.loadDirectory(rev)
			// Whether lookups may trust the copies under tokens' digests:
			// the schema key's changes may have gone unseen too.
			v.readSchema(rev)
			v.sweepCopies()
			// Whatever was read before this revision may have missed
			// changes no watch will report: it must be read again.
			v.changes.flush(rev)
			v.changes.synced(rev)
			v.changes.confirmed(rev, at)
			// Likewise the filter of issued tokens: it may answer again
			// once built at or after this revision.
			v.filter.restarted(rev)
			v.wantFilter()
			// The cache holds nothing current: read the tokens in use
			// before their requests do.
			v.startWarming(&stopWarming)
			next = rev + 1
			v.log.Debug("watch started", zap.Int64("revision", rev))
		}
		delivered, err := v.watchFrom(client, &next)
		if v.ctx.Err() != nil {
			return
		}
		if v.wentBack.Swap(false) {
			v.startAfresh()
			next = 0
			continue
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			v.log.Warn("watch history compacted; dropping the cache", zap.Int64("resume_revision", next))
			metrics.WatchFlushes.Inc()
			v.filter.lostHistory()
			next = 0
		} else {
			v.log.Debug("watch interrupted; resuming", zap.Int64("resume_revision", next), zap.Error(err))
		}
		if delivered {
			bo.Reset()
		}
		bo.Wait(v.ctx)
	}
}

// startAfresh forgets everything revisions were compared with, for a
// store whose revisions went back (the heartbeat's wentBack): the change
// log, every verdict, the filter of issued tokens and the directory. The
// watch then starts from scratch, as at the start.
func (v *Verifier) startAfresh() {
	v.store.ForgetCommits() // else read-your-writes waits for revisions gone
	v.changes.reset()       // a new epoch: no cached verdict is current
	v.filter.reset()
	v.dir.Reset()
	v.lookedUpAt.Store(0)
	metrics.WatchFlushes.Inc()
}

// loadDirectory loads the directory at rev, the revision the watch starts
// from, in at most 10 s (a page of 1 000 keys per read).
func (v *Verifier) loadDirectory(rev int64) {
	ctx, cancel := context.WithTimeout(v.ctx, v.directoryLoadTimeout())
	defer cancel()
	if err := v.dir.Load(ctx, rev); err != nil {
		v.log.Debug("directory not loaded; lookups read accounts and policies from etcd", zap.Error(err))
	}
}

// readSchema reads the store's schema version at rev (0: the latest):
// until it is known, lookups read records and users, not their copies.
func (v *Verifier) readSchema(rev int64) {
	ctx, cancel := context.WithTimeout(v.ctx, v.cfg.LookupTimeout)
	defer cancel()
	if err := v.store.ReadSchema(ctx, rev); err != nil {
		v.log.Debug("schema not read; lookups read records and users", zap.Error(err))
	}
}

// reloadDirectory loads, in the background, a directory that could not be
// loaded when the watch started or could not apply a change since, while
// the watch runs on (Directory.Reload): until then lookups read accounts
// and policies from etcd. One reload at a time, each within 10 s.
func (v *Verifier) reloadDirectory(ctx context.Context) {
	if !v.dirReloading.CompareAndSwap(false, true) {
		return
	}
	v.wg.Go(func() {
		defer v.dirReloading.Store(false)
		rctx, cancel := context.WithTimeout(ctx, v.directoryLoadTimeout())
		defer cancel()
		if err := v.dir.Reload(rctx); err != nil {
			v.log.Debug("directory not loaded yet; lookups read accounts and policies from etcd", zap.Error(err))
		}
	})
}

// directoryLoadTimeout bounds one load of the directory: pages of 1 000
// keys, however many.
func (v *Verifier) directoryLoadTimeout() time.Duration {
	return max(v.cfg.LookupTimeout, 10*time.Second)
}

func (v *Verifier) currentRevision() (int64, error) {
	ctx, cancel := context.WithTimeout(v.ctx, v.cfg.LookupTimeout)
	defer cancel()
	return v.clusterRevision(ctx, v.store.Client())
}

// clusterRevision is the revision the cluster has reached, by a
// linearizable read of a key that does not exist: it costs next to nothing
// and, unlike anything the watch says, speaks for the whole cluster.
func (v *Verifier) clusterRevision(ctx context.Context, client *clientv3.Client) (int64, error) {
	resp, err := client.Get(ctx, v.store.Prefix()+"/", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// watchFrom runs one watch from *next until it breaks, advancing *next past
// every change applied. It reports whether anything arrived.
func (v *Verifier) watchFrom(client *clientv3.Client, next *int64) (bool, error) {
	if v.beforeWatch != nil {
		v.beforeWatch()
	}
	ctx, cancel := v.watchContext()
	defer cancel()
	// Only the keys that decide verdicts: what the request path writes
	// (last-use times, rate-limit budgets) never reaches the cache.
	start, end := v.store.VerdictRange()
	wch := client.Watch(ctx, start, clientv3.WithRange(end), clientv3.WithRev(*next))

	var hb sync.WaitGroup
	hb.Go(func() { v.heartbeat(ctx, client) })
	defer hb.Wait()
	defer cancel()

	// Audit events, last-use times and webhooks never change a verdict.
	ignored := v.store.NoVerdictPrefixes()
	delivered := false
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return delivered, err
		}
		delivered = true
		last := v.applyEvents(wr.Events, ignored)
		if last > 0 {
			*next = last + 1
		}
		if err := v.noteSynced(ctx, client, &wr, last, *next); err != nil {
			return delivered, err
		}
	}
	return delivered, errors.New("watch channel closed")
}

// watchContext is the context of one watch, which its cancel or breakWatch
// ends.
//
// It requires a leader: a member cut off from the cluster cancels the
// watch instead of silently serving nothing.
//
// It has its own gRPC stream (the client groups watches by their context's
// metadata): etcd answers a progress request only when every watch of
// the stream is in sync, and the webhook and rate-limit watches, which
// may be catching up, must not keep this one from hearing that it is.
// With only verdict keys watched, progress notifications are how a
// quiet watch learns it is in sync past other writes.
func (v *Verifier) watchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(
		clientv3.WithRequireLeader(v.ctx), "tokengate-watch", "verdicts"))
	v.watchMu.Lock()
	v.watchCancel = cancel
	v.watchMu.Unlock()
	return ctx, cancel
}

// applyEvents applies one watch response's events to the directory, the
// store's view of the schema, the change log (except keys under the ignored
// prefixes) and the filter of issued tokens, then queues repairs of the
// users whose copies they left stale, and sweeps the copies when the store
// moved to schema 3. It returns the revision of the last
// event, 0 if there was none.
func (v *Verifier) applyEvents(events []*clientv3.Event, ignored []string) int64 {
	var last int64
	for _, ev := range events {
		v.dir.Apply(ev)
		v.store.NoteChange(ev)
		key := string(ev.Kv.Key)
		if !slices.ContainsFunc(ignored, func(p string) bool { return strings.HasPrefix(key, p) }) {
			v.changes.record(key, ev.Kv.ModRevision)
		}
		if h, ok := v.store.TokenDigestOfKey(ev.Kv.Key); ok {
			v.noteTokenChange(h, ev.Type == mvccpb.PUT, ev.Kv.ModRevision)
		}
		last = ev.Kv.ModRevision
	}
	if stale := v.store.StaleCopies(events); len(stale) > 0 {
		v.queueRepairs(stale)
	}
	v.sweepCopies() // the store moved to schema 3: trust copies once swept
	return last
}

// noteSynced moves the change log's applied revision as far as the watch
// response wr shows the watch is in sync; last is the revision of its last
// event (0: none) and next the revision the watch would resume from. It
// returns rpctypes.ErrCompacted when a progress notification claims
// revisions whose history etcd no longer holds.
func (v *Verifier) noteSynced(ctx context.Context, client *clientv3.Client, wr *clientv3.WatchResponse, last, next int64) error {
	switch {
	case wr.IsProgressNotify():
		// Every change up to the header's revision has been sent. The
		// resume point still moves only with delivered events: etcd
		// servers before the fix of etcd-io/etcd#15220 could notify
		// progress ahead of events not yet sent, and resuming past
		// them would lose them. Replaying a few events is harmless.
		// Such a server could also notify progress on a watch whose
		// history was compacted, before it says so: a notification
		// claiming revisions no event has reached yet is trusted only
		// while those revisions can still be read.
		if wr.Header.Revision >= next {
			intact, err := v.historyFrom(ctx, client, next)
			if err != nil {
				return nil // cannot tell now; the next heartbeat asks again
			}
			if !intact {
				return rpctypes.ErrCompacted
			}
		}
		v.changes.synced(wr.Header.Revision)
	case last > 0 && wr.Header.Revision == last:
		// A watch in sync sends each revision's events as it commits.
		v.changes.synced(last)
	}
	return nil
}

// historyFrom reports whether etcd still holds every revision from rev on,
// by a linearizable read at rev: false once a compaction has removed some.
func (v *Verifier) historyFrom(ctx context.Context, client *clientv3.Client, rev int64) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, v.cfg.LookupTimeout)
	defer cancel()
	_, err := client.Get(rctx, v.store.Prefix()+"/", clientv3.WithRev(rev), clientv3.WithCountOnly())
	switch {
	case err == nil, errors.Is(err, rpctypes.ErrFutureRev):
		return true, nil // nothing after rev is missing
	case errors.Is(err, rpctypes.ErrCompacted):
		return false, nil
	}
	return false, err
}

// heartbeat establishes, every interval, that the watch is in sync with
// the cluster: a linearizable read says which revision the cluster had
// reached when it was sent; once the watch has applied that revision, it
// was in sync then. A quiet watch is asked for a progress notification to
// get there. The watch's events and progress notifications alone prove
// nothing: they come from one member, which may be behind the others.
func (v *Verifier) heartbeat(ctx context.Context, client *clientv3.Client) {
	interval := v.heartbeatInterval()
	beats := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-v.beat:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		at := v.cfg.now()
		// What the watch applied before the read was committed before
		// it: a linearizable read is never behind it.
		appliedBefore := v.changes.applied.Load()
		rev, err := v.clusterRevision(rctx, client)
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				v.log.Debug("sync check failed", zap.Error(err))
			}
			continue
		}
		if v.afterSyncCheck != nil {
			v.afterSyncCheck()
		}
		if rev < appliedBefore {
			// The cluster's revisions went back.
			v.wentBack.Store(true)
			v.log.Error("etcd's revision went back: the store was restored from a snapshot without a bumped revision, or another cluster answers; starting over, every verdict forgotten",
				zap.Int64("revision", rev), zap.Int64("applied", appliedBefore))
			cancel()
			v.breakWatch()
			return
		}
		v.changes.confirmed(rev, at)
		if !v.dir.Ready() {
			v.reloadDirectory(ctx)
		}
		if !v.store.SchemaKnown() {
			v.readSchema(0)
		}
		v.sweepCopies()
		if beats++; beats%guardEvery == 0 && v.store.AtSchema() {
			v.guardCopies(rctx)
		}
		if v.changes.applied.Load() < rev {
			// The request must carry the watch's context metadata to
			// reach the same watch stream.
			if err := client.RequestProgress(rctx); err != nil && ctx.Err() == nil {
				v.log.Debug("progress request failed", zap.Error(err))
			}
		}
		cancel()
	}
}

// heartbeatInterval is how often a quiet watch asks etcd for progress: often
// enough that max_stale is judged on fresh news.
func (v *Verifier) heartbeatInterval() time.Duration {
	return min(max(v.cfg.MaxStale/5, 50*time.Millisecond), time.Second)
}

// breakWatch cancels the running watch, as a broken connection would; for
// tests (fault injection).
func (v *Verifier) breakWatch() {
	v.watchMu.Lock()
	defer v.watchMu.Unlock()
	if v.watchCancel != nil {
		v.watchCancel()
	}
}
