package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FastFilter/xorfilter"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// waitFor polls cond until it holds, failing the test after within.
func (e *env) waitFor(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v (stats %+v)", what, within, e.v.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// filterReady waits until the filter of issued tokens may answer.
func (e *env) filterReady() {
	e.t.Helper()
	e.waitFor("filter usable", 10*time.Second, func() bool { return e.v.Stats().FilterUsable })
}

// forged returns a well-formed token that was never issued and that the
// filter does not hold (not one of its false positives).
func (e *env) forged() string {
	e.t.Helper()
	for {
		secret, _ := newToken(e.t, token.Programmatic)
		if !e.v.filter.mayHold(cacheKey(token.Sum(secret))) {
			return secret
		}
	}
}

// judged is how many tokens the filter has said "never issued" about.
func judged(s Stats) int64 { return s.FilterRefused + s.FilterFallbacks }

// buildGate holds the filter's builds while closed, except those a test
// starts itself (ownBuild).
type buildGate struct{ ch atomic.Pointer[chan struct{}] }

func (g *buildGate) wait(ctx context.Context) {
	if ch := g.ch.Load(); ch != nil && ctx.Value(ownBuild{}) == nil {
		select {
		case <-*ch:
		case <-ctx.Done():
		}
	}
}

// ownBuild marks the context of a build a test starts itself.
type ownBuild struct{}

// close holds every build from now on, until the returned open.
func (g *buildGate) close() (open func()) {
	ch := make(chan struct{})
	g.ch.Store(&ch)
	var once sync.Once
	return func() { once.Do(func() { g.ch.Store(nil); close(ch) }) }
}

// build builds the filter now, past a closed gate.
func (e *env) build() {
	e.t.Helper()
	if err := e.v.buildFilter(context.WithValue(e.ctx(), ownBuild{}, true)); err != nil {
		e.t.Fatal(err)
	}
}

// TestFilterRefusesForgedTokens: a flood of distinct forged tokens costs at
// most one lookup per 100 tokens: the fallback budget's burst, then the
// filter's false positives (1 in 256). A real token is still admitted.
func TestFilterRefusesForgedTokens(t *testing.T) {
	e := newEnv(t, Config{})
	_, secret := e.user(nil)
	e.synced()
	e.filterReady()
	// 10 000 rather than fewer: the budget's burst of 20 is a fixed cost,
	// and 20 plus 0.4% of 3000 would already be over 30.
	const n = 10_000
	forged := make([]string, n)
	for i := range forged {
		forged[i], _ = newToken(t, token.Programmatic)
	}
	before := e.v.Stats()
	for _, tok := range forged {
		e.wantErr(tok, ErrUnknown)
	}
	after := e.v.Stats()
	lookups := after.Lookups - before.Lookups
	t.Logf("%d forged tokens: %d lookups (%d fallbacks, the rest false positives), %d refused from memory",
		n, lookups, after.FilterFallbacks-before.FilterFallbacks, after.FilterRefused-before.FilterRefused)
	if lookups > n/100 {
		t.Fatalf("%d lookups for %d forged tokens, want at most %d", lookups, n, n/100)
	}
	if fb := after.FilterFallbacks - before.FilterFallbacks; fb != DefaultFilterFallbacks {
		t.Errorf("%d fallback lookups on a stopped clock, want the burst of %d", fb, DefaultFilterFallbacks)
	}
	e.mustVerify(secret)
}

// TestFilterAdmitsTokenIssuedElsewhere: a token issued through another
// instance after the filter was built, whose watch event has not arrived
// (the watch is held down), is admitted at once through a fallback lookup.
func TestFilterAdmitsTokenIssuedElsewhere(t *testing.T) {
	e := newEnv(t, Config{})
	e.filterReady()
	release := e.holdWatch()
	defer release()
	secret := e.userUnseen()
	before := e.v.Stats()
	if !e.v.filterRefuses(cacheKey(token.Sum(secret)), e.clock.now()) {
		t.Fatal("the filter would not judge the new token: the test shows nothing")
	}
	e.mustVerify(secret)
	if after := e.v.Stats(); after.FilterFallbacks != before.FilterFallbacks+1 || after.Lookups != before.Lookups+1 {
		t.Fatalf("stats %+v -> %+v: want one fallback lookup", before, after)
	}
	e.mustVerify(secret) // cached now
}

// userUnseen creates a user through the writer (another instance) whose
// token the filter does not hold, and returns the token.
func (e *env) userUnseen() string {
	e.t.Helper()
	for {
		_, secret := e.user(nil)
		if !e.v.filter.mayHold(cacheKey(token.Sum(secret))) {
			return secret
		}
	}
}

// TestFilterFallbackBudget: beyond the budget, forged tokens are refused
// without a lookup; a token issued elsewhere meanwhile is refused until its
// watch event arrives, then admitted; the budget refills with time.
func TestFilterFallbackBudget(t *testing.T) {
	const budget = 5
	e := newEnv(t, Config{FilterFallbacks: budget})
	e.filterReady()
	lookups := e.v.Stats().Lookups
	for range budget {
		e.wantErr(e.forged(), ErrUnknown)
	}
	if got := e.v.Stats().Lookups - lookups; got != budget {
		t.Fatalf("%d lookups within a budget of %d", got, budget)
	}
	before := e.v.Stats()
	for range 50 {
		e.wantErr(e.forged(), ErrUnknown)
	}
	after := e.v.Stats()
	if after.Lookups != before.Lookups || after.FilterRefused != before.FilterRefused+50 {
		t.Fatalf("budget spent: stats %+v -> %+v, want 50 refused without a lookup", before, after)
	}

	release := e.holdWatch()
	secret := e.userUnseen()
	e.wantErr(secret, ErrUnknown) // its watch event is not here yet
	release()
	e.synced()
	e.mustVerify(secret)

	e.clock.advance(time.Second / budget)
	lookups = e.v.Stats().Lookups
	e.wantErr(e.forged(), ErrUnknown)
	e.wantErr(e.forged(), ErrUnknown)
	if got := e.v.Stats().Lookups - lookups; got != 1 {
		t.Fatalf("%d lookups after 1/%d s, want 1", got, budget)
	}
}

// TestFilterDuringOutage: with etcd stopped, a forged token is unknown
// (401), not unavailable (503), while the watch was in sync within
// max_stale — through a failed fallback lookup, or at once once the store
// is known down; a real token not cached is unavailable; past max_stale the
// filter no longer answers. Back up, it answers again.
func TestFilterDuringOutage(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: 5 * time.Minute, MaxStale: time.Minute})
	_, uncached := e.user(nil)
	e.synced()
	e.filterReady()

	e.srv.Stop()
	before := e.v.Stats()
	e.wantErr(e.forged(), ErrUnknown) // the fallback lookup fails
	if after := e.v.Stats(); after.FilterRefused != before.FilterRefused+1 || after.Lookups == before.Lookups {
		t.Fatalf("stats %+v -> %+v: want a failed fallback, then a refusal", before, after)
	}
	e.clock.advance(5 * time.Second)
	e.waitFor("store known down", 10*time.Second, e.v.Down)
	before = e.v.Stats()
	for range 20 {
		e.wantErr(e.forged(), ErrUnknown)
	}
	if after := e.v.Stats(); after.Lookups != before.Lookups || after.FilterRefused != before.FilterRefused+20 {
		t.Fatalf("stats %+v -> %+v: want 20 refused without a lookup", before, after)
	}
	e.wantErr(uncached, ErrUnavailable) // the filter holds it: the old way

	e.clock.advance(55 * time.Second) // 60 s after the last news
	if e.v.Stats().FilterUsable {
		t.Fatal("filter usable past max_stale")
	}
	before = e.v.Stats()
	e.wantErr(e.forged(), ErrUnavailable)
	if judged(e.v.Stats()) != judged(before) {
		t.Fatal("the filter judged a token past max_stale")
	}

	e.srv.Restart()
	e.synced()
	e.confirmedNow()
	e.filterReady()
	e.wantErr(e.forged(), ErrUnknown)
	e.waitFor("the recovery noticed", 10*time.Second, func() bool { return !e.v.Down() })
	e.mustVerify(uncached)
}

// TestFilterUnusableAfterLostHistory: when the watch cannot resume
// (history compacted) it may have missed tokens created meanwhile; the
// filter does not answer until built again, and then does.
func TestFilterUnusableAfterLostHistory(t *testing.T) {
	var gate buildGate
	e := newEnvWith(t, Config{}, func(v *Verifier) { v.beforeFilterBuild = gate.wait })
	e.filterReady()
	before := e.v.Stats()
	e.wantErr(e.forged(), ErrUnknown)
	if judged(e.v.Stats()) != judged(before)+1 {
		t.Fatal("the filter did not judge a forged token")
	}

	open := gate.close()
	defer open()
	release := e.holdWatch()
	missed := e.userUnseen() // created while the watch is down...
	if _, err := e.writer.CreateAccount(e.ctx(), store.Account{Org: e.org, Name: "later"}, operator); err != nil {
		t.Fatal(err)
	}
	e.srv.Compact(e.ctx()) // ...and gone from the history
	flushes := e.v.Stats().Flushes
	release()
	e.waitFor("flush", 10*time.Second, func() bool { return e.v.Stats().Flushes > flushes })
	e.synced()
	e.confirmedNow()

	before = e.v.Stats()
	if before.FilterUsable {
		t.Fatal("filter usable after the watch lost its history")
	}
	e.mustVerify(missed)
	e.wantErr(e.forged(), ErrUnknown)
	if after := e.v.Stats(); judged(after) != judged(before) || after.Lookups != before.Lookups+2 {
		t.Fatalf("stats %+v -> %+v: want both tokens the old way", before, after)
	}

	builds := e.v.Stats().FilterBuilds
	open()
	e.waitFor("a build", 10*time.Second, func() bool { return e.v.Stats().FilterBuilds > builds })
	e.filterReady()
	if !e.v.filter.mayHold(cacheKey(token.Sum(missed))) {
		t.Fatal("the rebuilt filter lacks the token the watch missed")
	}
	before = e.v.Stats()
	e.wantErr(e.forged(), ErrUnknown)
	if judged(e.v.Stats()) != judged(before)+1 {
		t.Fatal("the rebuilt filter did not judge a forged token")
	}
}

// TestFilterRebuild: a build sheds deleted tokens and keeps the tokens
// created while it ran (after the revision it read at, before it was put in
// place). Builds in the background are held: the test builds itself.
func TestFilterRebuild(t *testing.T) {
	var gate buildGate
	scanned, resume := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	e := newEnvWith(t, Config{FilterFallbacks: 1}, func(v *Verifier) {
		v.beforeFilterBuild = gate.wait
		v.beforeFilterInstall = func() {
			if armed.CompareAndSwap(true, false) {
				close(scanned)
				<-resume
			}
		}
	})
	defer gate.close()()
	var users []*store.User
	var secrets []string
	for range 64 {
		u, secret := e.user(nil)
		users, secrets = append(users, u), append(secrets, secret)
	}
	e.synced()
	e.build()
	e.filterReady()
	if s := e.v.Stats(); s.FilterKeys != 64 || s.FilterOverlay != 0 {
		t.Fatalf("filter of %d keys, overlay %d; want 64 built in", s.FilterKeys, s.FilterOverlay)
	}
	for _, u := range users[:32] {
		if err := e.writer.DeleteUser(e.ctx(), e.org, u.ID, operator); err != nil {
			t.Fatal(err)
		}
	}
	e.synced()

	armed.Store(true)
	built := make(chan struct{})
	go func() {
		defer close(built)
		if err := e.v.buildFilter(context.WithValue(context.Background(), ownBuild{}, true)); err != nil {
			t.Error(err)
		}
	}()
	<-scanned
	var during []string
	for range 10 {
		_, secret := e.user(nil)
		during = append(during, secret)
	}
	e.synced() // in the overlay, after the revision the build read at
	close(resume)
	<-built

	if s := e.v.Stats(); s.FilterKeys != 32+10 || s.FilterOverlay != 10 {
		t.Errorf("filter of %d keys, overlay %d; want 32 built in and 10 created during the build", s.FilterKeys, s.FilterOverlay)
	}
	for _, secret := range append(during, secrets[32:]...) {
		if !e.v.filter.mayHold(cacheKey(token.Sum(secret))) {
			t.Fatal("a live token is missing from the rebuilt filter")
		}
	}
	kept := 0
	for _, secret := range secrets[:32] {
		if e.v.filter.mayHold(cacheKey(token.Sum(secret))) {
			kept++
		}
	}
	// Each deleted token is a false positive with probability 1/256.
	if kept > 3 {
		t.Errorf("%d of 32 deleted tokens still in the rebuilt filter", kept)
	}
	e.filterReady()
	e.wantErr(e.forged(), ErrUnknown) // spends the budget: the clock stands still
	for _, secret := range during {
		e.mustVerify(secret)
	}
}

// TestFilterKeepsTokensCreatedDuringBuilds: tokens are created while
// builds run one after another; after each build, once the watch has
// applied them, every token created so far is in the filter — no build
// loses a creation the watch recorded while it ran — and in the end each
// is admitted with the fallback budget spent.
func TestFilterKeepsTokensCreatedDuringBuilds(t *testing.T) {
	e := newEnv(t, Config{FilterFallbacks: 1})
	e.filterReady()
	e.wantErr(e.forged(), ErrUnknown) // spends the budget: the clock stands still

	var mu sync.Mutex
	var created []string
	done := make(chan error, 1)
	go func() {
		for range 60 {
			secret, err := token.Generate(token.Programmatic)
			if err != nil {
				done <- err
				return
			}
			nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID()}}
			u := store.User{Org: e.org, Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: e.act1, Role: store.RoleViewer, Name: "bot"}
			if _, err := e.writer.CreateUser(context.Background(), u, &nt, operator); err != nil {
				done <- err
				return
			}
			mu.Lock()
			created = append(created, secret)
			mu.Unlock()
		}
		done <- nil
	}()
	builds := 0
	for building := true; building; builds++ {
		if err := e.v.buildFilter(e.ctx()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			building = false
		default:
		}
		mu.Lock()
		sofar := created[:len(created):len(created)]
		mu.Unlock()
		e.synced()
		for i, secret := range sofar {
			if !e.v.filter.mayHold(cacheKey(token.Sum(secret))) {
				t.Fatalf("after build %d, token %d of %d is not in the filter", builds+1, i+1, len(sofar))
			}
		}
	}
	e.filterReady()
	t.Logf("%d tokens created during %d builds", len(created), builds)
	for _, secret := range created {
		e.mustVerify(secret)
	}
}

// TestFilterBuildTriggers: more creations than the overlay's limit, or more
// deletions than an eighth of the tokens, start a build; creations beyond
// the overlay's room make the filter unusable until built.
func TestFilterBuildTriggers(t *testing.T) {
	var gate buildGate
	e := newEnvWith(t, Config{}, func(v *Verifier) { v.beforeFilterBuild = gate.wait })
	e.filterReady()
	owner, _ := e.user(nil)
	e.synced()
	e.waitFor("no build pending", 10*time.Second, func() bool { return len(e.v.filterWanted) == 0 })

	builds := e.v.Stats().FilterBuilds
	hashes := e.importTokens(owner, 1025) // the limit is 1024
	e.synced()
	e.waitFor("a build for the overlay", 10*time.Second, func() bool {
		s := e.v.Stats()
		return s.FilterBuilds > builds && s.FilterOverlay == 0
	})
	if s := e.v.Stats(); s.FilterKeys != 1026 {
		t.Fatalf("filter of %d keys, want 1026", s.FilterKeys)
	}

	// An eighth of 1026 is 128.
	builds = e.v.Stats().FilterBuilds
	e.deleteTokens(hashes[:128])
	e.synced()
	if s := e.v.Stats(); s.FilterBuilds != builds || len(e.v.filterWanted) != 0 {
		t.Fatal("a build started after 128 deletions")
	}
	e.deleteTokens(hashes[128:129])
	e.waitFor("a build for the deletions", 10*time.Second, func() bool {
		s := e.v.Stats()
		return s.FilterBuilds > builds && s.FilterKeys == 1026-129
	})

	// With builds held, more creations than the overlay has room for.
	e.filterReady()
	open := gate.close()
	defer open()
	e.importTokens(owner, 1281) // room: 1024 + 256
	e.synced()
	if s := e.v.Stats(); s.FilterUsable || s.FilterOverlay != 1280 {
		t.Fatalf("creations dropped for want of room: usable %v, overlay %d", s.FilterUsable, s.FilterOverlay)
	}
	open()
	e.filterReady()
}

// importTokens stores n tokens of the user in bulk and returns their
// digests.
func (e *env) importTokens(u *store.User, n int) []token.Hash {
	e.t.Helper()
	var tokens []store.NewToken
	var hashes []token.Hash
	for range n {
		_, nt := newToken(e.t, token.Programmatic)
		nt.Token.Org, nt.Token.User = u.Org, u.ID
		tokens, hashes = append(tokens, nt), append(hashes, nt.Hash)
	}
	if err := e.writer.Import(e.ctx(), nil, tokens); err != nil {
		e.t.Fatal(err)
	}
	return hashes
}

// deleteTokens deletes the digest keys of tokens, a hundred per
// transaction.
func (e *env) deleteTokens(hashes []token.Hash) {
	e.t.Helper()
	for len(hashes) > 0 {
		batch := hashes[:min(100, len(hashes))]
		hashes = hashes[len(batch):]
		var ops []clientv3.Op
		for _, h := range batch {
			ops = append(ops, clientv3.OpDelete(e.writer.TokenDigestsPrefix()+fmt.Sprintf("%x", h[:])))
		}
		if _, err := e.writer.Client().Txn(e.ctx()).Then(ops...).Commit(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestFilterMemory: the filter with its overlay at its largest stays
// within 2 bytes per token from 100 000 tokens up (below, the overlay's
// floor dominates: 26 kB). The filter is built from synthetic digests; the
// heap it takes is logged beside what Stats says (other tests' goroutines
// may allocate meanwhile, so it is not compared).
func TestFilterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds filters of up to a million keys")
	}
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		f, heap := filterOfRandomKeys(t, n)
		s := f.state()
		perToken := float64(s.bytes) / float64(n)
		t.Logf("%d tokens: %d bytes (%.2f per token: filter %.2f, overlay %.2f), %d on the heap",
			n, s.bytes, perToken, float64(len(f.fuse.Fingerprints))/float64(n), float64(f.overlay.bytes())/float64(n), heap)
		if n >= 100_000 && perToken > 2 {
			t.Errorf("%d tokens: %.2f bytes per token, more than 2", n, perToken)
		}
	}
}

// filterOfRandomKeys builds a filter of n random keys with its overlay full,
// as creations would leave it, and measures what it holds on the heap.
func filterOfRandomKeys(tb testing.TB, n int) (*digestFilter, int64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = rng.Uint64()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // what finalizers released
	runtime.ReadMemStats(&before)
	bf, err := xorfilter.PopulateBinaryFuse8(keys)
	if err != nil {
		tb.Fatal(err)
	}
	f := &digestFilter{}
	f.install(bf, n, 1, 0)
	for i := range overlayRoom(n) + 10 {
		f.observe(rng.Uint64(), true, int64(2+i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if f.overlay.count() != overlayRoom(n) {
		tb.Fatalf("overlay of %d keys, room for %d", f.overlay.count(), overlayRoom(n))
	}
	runtime.KeepAlive(keys)
	return f, int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// TestOverlay: keys in, their latest revision kept, no more than the room,
// what is after a revision; lookups wrap around the end.
func TestOverlay(t *testing.T) {
	o := newOverlay(8)
	last := uint64(1<<64 - 1) // placed in the last slot: probes wrap
	for i, k := range []uint64{last, last - 1, last - 2, 0, 1, 5 << 60} {
		if !o.add(k, int64(10+i)) {
			t.Fatalf("no room for key %d of 8", i)
		}
	}
	if !o.add(last, 30) || o.count() != 6 {
		t.Fatal("adding a key again took room")
	}
	for _, k := range []uint64{last, last - 1, last - 2, 0, 1, 5 << 60} {
		if !o.has(k) {
			t.Fatalf("key %x missing", k)
		}
	}
	if o.has(2) || o.has(last-3) {
		t.Fatal("holds a key never added")
	}
	o.add(7, 40)
	o.add(8, 41)
	if o.add(9, 42) || o.has(9) || o.count() != 8 {
		t.Fatal("took more than its room")
	}
	got := map[uint64]int64{}
	o.after(14, func(k uint64, rev int64) { got[k] = rev })
	if len(got) != 4 || got[5<<60] != 15 || got[last] != 30 || got[7] != 40 || got[8] != 41 {
		t.Fatalf("after 14: %v", got)
	}
}

// TestDigestFilterWantsBuilds: a build is asked for once when the overlay
// passes max(1024, n/64) creations and once when the deletions pass n/8,
// and after a build that leaves them past.
func TestDigestFilterWantsBuilds(t *testing.T) {
	const n = 100_000 // limits: 1562 creations, 12 500 deletions
	f, _ := filterOfRandomKeys(t, n)
	const base = 1 << 40
	f.install(f.fuse, n, base, 0) // past every creation: an empty overlay
	rev := int64(base + 1)
	wanted := 0
	for i := range 1600 {
		if f.observe(uint64(i)<<20, true, rev) {
			wanted++
			if i != 1562 {
				t.Errorf("a build wanted at creation %d, want at 1563", i+1)
			}
		}
		rev++
	}
	for i := range 12_600 {
		if f.observe(uint64(i)<<20, false, rev) {
			wanted++
			if i != 12_500 {
				t.Errorf("a build wanted at deletion %d, want at 12 501", i+1)
			}
		}
		rev++
	}
	if wanted != 2 || !f.wantsBuild() {
		t.Fatalf("%d builds wanted, then %v", wanted, f.wantsBuild())
	}
	// A build that read before the last 40 creations and 100 deletions.
	f.install(f.fuse, n, rev-12_600-41, 12_500)
	if f.overlay.count() != 40 || f.deletes != 100 || f.wantsBuild() {
		t.Fatalf("after a build: overlay %d, deletions %d, build wanted %v", f.overlay.count(), f.deletes, f.wantsBuild())
	}
	f.lostHistory()
	if f.wantsBuild() {
		t.Fatal("a build wanted before the watch started again")
	}
	f.restarted(rev)
	if !f.wantsBuild() {
		t.Fatal("no build wanted after the watch started again")
	}
}

// TestDigestFilterRevisions: what the overlay keeps across a build, and
// when the filter may answer: built at or after the watch's start, with
// no creation dropped.
func TestDigestFilterRevisions(t *testing.T) {
	built := func(keys ...uint64) *xorfilter.BinaryFuse8 {
		bf, err := xorfilter.PopulateBinaryFuse8(keys)
		if err != nil {
			t.Fatal(err)
		}
		return bf
	}
	const a, b, c, d, x = 1 << 40, 2 << 40, 3 << 40, 4 << 40, 5 << 40
	var f digestFilter
	f.init()
	f.restarted(5)
	if f.excludes(x) {
		t.Fatal("answers before a build")
	}
	f.observe(b, true, 8) // created during the first build, before its scan
	f.observe(c, true, 12)
	if !f.install(built(a, b), 2, 10, 0) || !f.excludes(x) || f.excludes(a) || f.excludes(b) || f.excludes(c) {
		t.Fatal("after the build at 10")
	}
	if f.overlay.count() != 1 {
		t.Fatalf("overlay of %d: want only the creation after 10", f.overlay.count())
	}
	f.observe(d, true, 9) // an event the build already read
	if f.overlay.count() != 1 {
		t.Fatal("a creation before the build's revision went to the overlay")
	}

	f.lostHistory()
	if f.excludes(x) {
		t.Fatal("answers after the watch lost its history")
	}
	if f.install(built(a), 1, 20, 0) || f.excludes(x) {
		t.Fatal("a build before the watch started again made it answer")
	}
	f.restarted(25)
	if f.excludes(x) {
		t.Fatal("a build at 20 answers for a watch that started at 25")
	}
	if !f.install(built(a), 1, 25, 0) || !f.excludes(x) {
		t.Fatal("a build at the watch's start does not answer")
	}
	if f.install(built(a, b, c), 3, 24, 0); f.builtAt != 25 || !f.excludes(b) {
		t.Fatal("an older build replaced a newer one")
	}

	// No room: the filter stops answering until built past the creation
	// that found none.
	room := overlayRoom(f.keys)
	for i := range room {
		f.observe(uint64(i), true, int64(26+i))
	}
	if !f.excludes(x) {
		t.Fatal("a full overlay stops the filter")
	}
	lost := int64(26 + room)
	f.observe(d, true, lost)
	if f.excludes(x) || f.excludes(d) {
		t.Fatal("answers after a creation found no room")
	}
	if f.install(built(a), 1, lost-1, 0) || !f.install(built(a, d), 2, lost, 0) || !f.excludes(x) {
		t.Fatal("a build past the dropped creation does not answer")
	}
}

func TestConfigFilterFallbacks(t *testing.T) {
	if err := (Config{FilterFallbacks: -1}).Validate(); err == nil {
		t.Error("negative filter fallbacks accepted")
	}
	c := Config{}
	if err := c.fill(); err != nil || c.FilterFallbacks != DefaultFilterFallbacks {
		t.Errorf("default filter fallbacks %d, %v", c.FilterFallbacks, err)
	}
}

// TestFallbackBudget: a bucket of rate lookups, refilled continuously; a
// token being looked up is admitted to share the lookup, and for a moment
// after, sent to the cache, without spending.
func TestFallbackBudget(t *testing.T) {
	c := newClock()
	var b fallbackBudget
	b.init(4, c.now())
	key := uint64(100)
	admitted := func() int {
		n := 0
		for range 10 {
			key++
			if b.admit(key, c.now()) == admitLookup {
				b.done(key, c.now())
				n++
			}
		}
		return n
	}
	if n := admitted(); n != 4 {
		t.Fatalf("burst of %d, want 4", n)
	}
	c.advance(500 * time.Millisecond)
	if n := admitted(); n != 2 {
		t.Fatalf("%d after half a second at 4/s, want 2", n)
	}
	c.advance(time.Hour)
	if n := admitted(); n != 4 {
		t.Fatalf("%d after an hour, want the burst of 4", n)
	}

	c.advance(time.Second / 4)
	if a := b.admit(1, c.now()); a != admitLookup {
		t.Fatalf("the last unit of budget: %v", a)
	}
	for range 3 {
		if a := b.admit(1, c.now()); a != admitShare {
			t.Fatalf("a token being looked up: %v, want to share the lookup", a)
		}
	}
	if a := b.admit(2, c.now()); a != admitNone {
		t.Fatalf("another token past the budget: %v", a)
	}
	b.done(1, c.now())
	c.advance(fallbackRecent - time.Millisecond)
	if a := b.admit(1, c.now()); a != admitCached {
		t.Fatalf("a token looked up a moment ago: %v, want the cache", a)
	}
	c.advance(time.Millisecond)
	if a := b.admit(1, c.now()); a != admitLookup { // the budget refilled meanwhile
		t.Fatalf("a token looked up a while ago: %v, want a new lookup", a)
	}
	b.done(1, c.now())
	c.advance(fallbackRecent)
	if b.admit(3, c.now()) != admitLookup {
		t.Fatal("no budget after a second")
	}
	b.done(3, c.now()) // prunes what ended long ago
	if _, ok := b.lookups[1]; ok {
		t.Fatal("a lookup ended long ago is still remembered")
	}
}

// TestFilterSharesFallbackLookups: many concurrent requests with a token
// issued elsewhere a moment ago (its watch event not here yet) are all
// admitted on one lookup and one unit of budget.
func TestFilterSharesFallbackLookups(t *testing.T) {
	e := newEnv(t, Config{FilterFallbacks: 1})
	e.filterReady()
	release := e.holdWatch()
	defer release()
	secret := e.userUnseen()
	lookups := e.v.Stats().Lookups
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			if _, err := e.v.Verify(context.Background(), secret); err != nil {
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of 200 concurrent requests refused (stats %+v)", n, e.v.Stats())
	}
	if got := e.v.Stats().Lookups - lookups; got != 1 {
		t.Fatalf("%d lookups, want 1", got)
	}
	e.wantErr(e.forged(), ErrUnknown)
	if e.v.Stats().Lookups-lookups != 1 {
		t.Fatal("the budget was not spent by the shared lookup")
	}
}

// BenchmarkVerifyForged compares a forged token refused by the filter (a
// new token each time, the fallback budget spent) with one remembered in
// the negative cache (the same token again).
func BenchmarkVerifyForged(b *testing.B) {
	c := newClock()
	e := benchEnvWith(b, Config{now: c.now})
	deadline := time.Now().Add(10 * time.Second)
	for !e.v.Stats().FilterUsable {
		if time.Now().After(deadline) {
			b.Fatal("filter not usable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Tokens the filter does not hold: its false positives take the
	// ordinary path, measured by the other case.
	forged := make([]string, 0, 100_000)
	for len(forged) < cap(forged) {
		tok, _ := token.Generate(token.Programmatic)
		if !e.v.filter.mayHold(cacheKey(token.Sum(tok))) {
			forged = append(forged, tok)
		}
	}
	ctx := context.Background()
	for _, tok := range forged[:DefaultFilterFallbacks] {
		e.v.Verify(ctx, tok) // spend the budget: the clock stands still
	}
	b.Run("filter", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := e.v.Verify(ctx, forged[i%len(forged)]); !errors.Is(err, ErrUnknown) {
				b.Fatal(err)
			}
		}
	})
	b.Run("negative-cache", func(b *testing.B) {
		e.v.Verify(ctx, forged[0])
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.v.Verify(ctx, forged[0]); !errors.Is(err, ErrUnknown) {
				b.Fatal(err)
			}
		}
	})
}
