package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/etcdcluster"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// BenchmarkScale loads tokens into a real etcd process in steps — by
// default 10 000, 100 000 and 1 000 000 tokens (set TOKENGATE_SCALE_TOKENS
// to the largest step) — and at each size measures, with a cache of
// cache_entries = 100 000:
//
//   - ns/op, cached-p50-ns, cached-p99-ns: verifying tokens of a hot set
//     that fits the cache; it should stay flat as the store grows;
//   - cold-lookups/token, cold-p50-ns, cold-p99-ns: the first verification
//     of tokens never seen; exactly one lookup each, of one etcd request
//     (a store at schema 3: the key under the token's digest holds its
//     record and user; the directory of accounts and policies loaded);
//     cold-2req-p50-ns and cold-2req-p99-ns: the same on a store at
//     schema 2 (the reference, then record and user), cold-3req-p50-ns
//     and cold-3req-p99-ns: schema 2 without the directory (three
//     requests); the three in turns of 250 tokens in the same run, the
//     store's schema key moved between turns as an upgrade moves it;
//   - cache-heap-MB, cache-entries: what the verifier adds to the heap after
//     a random-access pass over up to 150 000 tokens, which must stay
//     bounded by cache_entries, not grow with the store (the filter of
//     issued tokens included);
//   - filter-B/token: the filter of issued tokens with its overlay at its
//     largest (allocated with each build), per token; filter-build-ms and
//     filter-build-alloc-B/token: one build, the scan of every digest
//     included, and what it allocates meanwhile (garbage once built);
//   - forged-ns: verifying a forged token the filter refuses (its false
//     positives, 1 in 256, go the ordinary way and are left out).
//
// etcd runs as its own process, so the heap measured is the gateway's.
// Run it alone: go test -run X -bench Scale -benchtime 1x ./module/verify
func BenchmarkScale(b *testing.B) {
	largest := tokensFromEnv(b, "TOKENGATE_SCALE_TOKENS", 1_000_000, 10_000)
	sizes := []int{largest}
	for _, n := range []int{100_000, 10_000} {
		if n < largest {
			sizes = append([]int{n}, sizes...)
		}
	}
	sc := newScale(b)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) { sc.measure(b, n) })
	}
}

// BenchmarkColdEmbedded measures the cold path on the embedded etcd (in
// the test's process, over loopback, as a gateway without an etcd block
// runs it, but without fsync): 10 000 tokens of account-level users,
// verified once each in turns of one, two and three etcd requests as in
// BenchmarkScale; cold-p50-ns and cold-p99-ns are one request's,
// cold-2req-* and cold-3req-* the others'.
// Run it alone: go test -run X -bench ColdEmbedded -benchtime 1x ./module/verify
func BenchmarkColdEmbedded(b *testing.B) {
	srv := etcdtest.Start(b)
	sc := newScaleOn(b, srv.Client())
	sc.load(b, 10_000)
	v, err := New(sc.st, Config{CacheEntries: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	var one, two, three []time.Duration
	for b.Loop() {
		one, two, three = sc.coldTurns(b, v, sc.secrets[:9000])
		v.identities.Clear()
	}
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"cold", one}, {"cold-2req", two}, {"cold-3req", three}} {
		b.ReportMetric(float64(percentile(m.ds, 50).Nanoseconds()), m.name+"-p50-ns")
		b.ReportMetric(float64(percentile(m.ds, 99).Nanoseconds()), m.name+"-p99-ns")
	}
}

// BenchmarkSweep measures the sweep a gateway makes of the copies as its
// watch starts (store.StaleUsers: the revisions of every reference, user
// and token record at one revision), beside a build of the filter of
// issued tokens (the scan of every digest a gateway makes at the same
// time), in turns in the same run: sweep-ms, filter-build-ms and
// sweep/filter; what each allocates per token (garbage once done; the
// sweep holds 16 bytes per token while it runs). TOKENGATE_SCALE_TOKENS sets the size (default 100 000,
// 50 tokens a user).
// Run it alone: go test -run X -bench Sweep -benchtime 3x ./module/verify
func BenchmarkSweep(b *testing.B) {
	n := tokensFromEnv(b, "TOKENGATE_SCALE_TOKENS", 100_000, 1000)
	sc := newScale(b)
	sc.load(b, n)
	v, err := New(sc.st, Config{CacheEntries: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	var sweep, build time.Duration
	var sweepAlloc, buildAlloc uint64
	turns := 0
	allocated := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.TotalAlloc
	}
	for b.Loop() {
		start, before := time.Now(), allocated()
		stale, _, err := sc.st.StaleUsers(ctx)
		if err != nil || len(stale) != 0 {
			b.Fatalf("sweep: %d stale %v", len(stale), err)
		}
		sweep += time.Since(start)
		sweepAlloc += allocated() - before
		start, before = time.Now(), allocated()
		if err := v.buildFilter(ctx); err != nil {
			b.Fatal(err)
		}
		build += time.Since(start)
		buildAlloc += allocated() - before
		turns++
	}
	b.ReportMetric(float64(sweep.Microseconds())/1000/float64(turns), "sweep-ms")
	b.ReportMetric(float64(build.Microseconds())/1000/float64(turns), "filter-build-ms")
	b.ReportMetric(float64(sweep)/float64(build), "sweep/filter")
	b.ReportMetric(float64(sweepAlloc)/float64(turns*n), "sweep-alloc-B/token")
	b.ReportMetric(float64(buildAlloc)/float64(turns*n), "filter-build-alloc-B/token")
}

// tokensFromEnv is the number of tokens the environment variable name
// asks a benchmark for, def when unset, at least least.
func tokensFromEnv(b *testing.B, name string, def, least int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		b.Fatalf("%s=%q: want a number of at least %d", name, s, least)
	}
	return n
}

// scale holds the store and the tokens loaded so far, across sizes.
type scale struct {
	st      *store.Store
	secrets []string
	used    int // tokens already verified once (no longer cold)
}

func newScale(b *testing.B) *scale {
	b.Helper()
	return newScaleOn(b, etcdcluster.StartWith(b, etcdcluster.Options{Members: 1}).Client())
}

// newScaleOn makes the scale's organization and account on the etcd
// client reaches.
func newScaleOn(b *testing.B, client *clientv3.Client) *scale {
	b.Helper()
	st := store.New(client, "/tg")
	ctx := context.Background()
	if _, err := st.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateAccount(ctx, store.Account{Org: "acme", ID: "act-00000001", Name: "a"}, operator); err != nil {
		b.Fatal(err)
	}
	return &scale{st: st}
}

// load grows the store to n tokens, 50 per user.
func (sc *scale) load(b *testing.B, n int) {
	b.Helper()
	const perUser = 50
	ctx := context.Background()
	start := time.Now()
	for len(sc.secrets) < n {
		batch := min(n-len(sc.secrets), 10_000)
		users := make([]store.User, 0, batch/perUser+1)
		tokens := make([]store.NewToken, 0, batch)
		for i := 0; i < batch; i++ {
			if i%perUser == 0 {
				users = append(users, store.User{ID: store.NewUserID(), Org: "acme", Type: store.TypeProgrammatic,
					Level: store.LevelAccount, Account: "act-00000001", Role: store.RoleViewer, Name: "bot"})
			}
			secret, err := token.Generate(token.Programmatic)
			if err != nil {
				b.Fatal(err)
			}
			sc.secrets = append(sc.secrets, secret)
			tokens = append(tokens, store.NewToken{Hash: token.Sum(secret), Token: store.Token{
				ID: store.NewTokenID(), Org: "acme", User: users[len(users)-1].ID}})
		}
		if err := sc.st.Import(ctx, users, tokens); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("store holds %d tokens (loading took %s)", len(sc.secrets), time.Since(start).Round(time.Millisecond))
}

func (sc *scale) measure(b *testing.B, n int) {
	b.StopTimer()
	sc.load(b, n)
	// The heap before the verifier exists: the benchmark's own million
	// secrets are not the gateway's memory.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	// A fresh cache per size, so that each size starts alike.
	v, err := New(sc.st, Config{CacheEntries: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	filterBytes, build, buildAlloc := sc.measureFilter(b, v)
	verify := func(secret string) time.Duration {
		start := time.Now()
		if _, err := v.Verify(ctx, secret); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}

	// Cold: tokens never verified before, one lookup each.
	const coldN = 3000
	if sc.used+coldN > len(sc.secrets) {
		sc.used = 0 // a fresh cache makes every token cold again
	}
	lookups := sc.st.Stats().Lookups
	cold, two, three := sc.coldTurns(b, v, sc.secrets[sc.used:sc.used+coldN])
	coldTokens := sc.secrets[sc.used : sc.used+coldN]
	sc.used += coldN
	perToken := float64(sc.st.Stats().Lookups-lookups) / coldN

	// Random access over the store: evicts, and shows memory stays bounded.
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	pass := min(n, 150_000)
	for range pass {
		verify(sc.secrets[rng.IntN(len(sc.secrets))])
	}
	v.identities.Wait()
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)

	// Cached: a hot set well inside the cache, read again and again; the
	// percentiles come from a fixed number of timed verifications, ns/op
	// from the benchmark loop.
	hot := coldTokens[:1000]
	for _, s := range hot {
		verify(s)
	}
	v.identities.Wait()
	cached := make([]time.Duration, 200_000)
	for i := range cached {
		cached[i] = verify(hot[i%len(hot)])
	}
	b.StartTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := v.Verify(ctx, hot[i%len(hot)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(cached, 50).Nanoseconds()), "cached-p50-ns")
	b.ReportMetric(float64(percentile(cached, 99).Nanoseconds()), "cached-p99-ns")
	b.ReportMetric(perToken, "cold-lookups/token")
	b.ReportMetric(float64(percentile(cold, 50).Nanoseconds()), "cold-p50-ns")
	b.ReportMetric(float64(percentile(cold, 99).Nanoseconds()), "cold-p99-ns")
	b.ReportMetric(float64(percentile(two, 50).Nanoseconds()), "cold-2req-p50-ns")
	b.ReportMetric(float64(percentile(two, 99).Nanoseconds()), "cold-2req-p99-ns")
	b.ReportMetric(float64(percentile(three, 50).Nanoseconds()), "cold-3req-p50-ns")
	b.ReportMetric(float64(percentile(three, 99).Nanoseconds()), "cold-3req-p99-ns")
	b.ReportMetric(float64(int64(mem.HeapInuse)-int64(base.HeapInuse))/(1<<20), "cache-heap-MB")
	b.ReportMetric(float64(v.Entries()), "cache-entries")
	b.ReportMetric(float64(filterBytes)/float64(n), "filter-B/token")
	b.ReportMetric(float64(build.Microseconds())/1000, "filter-build-ms")
	b.ReportMetric(float64(buildAlloc)/float64(n), "filter-build-alloc-B/token")
	b.ReportMetric(float64(sc.forgedNanos(b, v).Nanoseconds()), "forged-ns")
	if perToken != 1 {
		b.Errorf("cold path: %.3f lookups per token, want 1", perToken)
	}
}

// coldTurns verifies each of secrets once, in turns of 250, side by side:
// one etcd request (schema 3, the directory loaded), two (schema 2, the
// directory loaded), three (schema 2, no directory). It returns the
// latencies of each, and leaves the store at schema 3 with the directory
// loaded.
func (sc *scale) coldTurns(b *testing.B, v *Verifier, secrets []string) (one, two, three []time.Duration) {
	b.Helper()
	ctx := context.Background()
	for i, s := range secrets {
		mode := i / 250 % 3
		if i%250 == 0 {
			sc.setMode(b, v, mode)
		}
		start := time.Now()
		if _, err := v.Verify(ctx, s); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		switch mode {
		case 0:
			one = append(one, took)
		case 1:
			two = append(two, took)
		default:
			three = append(three, took)
		}
	}
	sc.setMode(b, v, 0)
	return one, two, three
}

// setMode makes the next cold lookups cost 1, 2 or 3 etcd requests (mode
// 0, 1, 2): the store's schema key at 3 or 2, as the watch hears it, and
// the directory of accounts and policies loaded or not.
func (sc *scale) setMode(b *testing.B, v *Verifier, mode int) {
	b.Helper()
	ctx := context.Background()
	version := `{"version":3}`
	if mode > 0 {
		version = `{"version":2}`
	}
	put, err := sc.st.Client().Put(ctx, "/tg/schema", version)
	if err != nil {
		b.Fatal(err)
	}
	if err := v.WaitForRevision(ctx, put.Header.Revision); err != nil {
		b.Fatal(err)
	}
	// At 3 the copies are trusted once the verifier's sweep has read the
	// store (a few seconds at a million tokens).
	deadline := time.Now().Add(2 * time.Minute)
	for sc.st.CopiesTrusted() != (mode == 0) {
		if time.Now().After(deadline) {
			b.Fatalf("mode %d: copies trusted %v", mode, sc.st.CopiesTrusted())
		}
		time.Sleep(5 * time.Millisecond) // polling a flag, with a deadline
	}
	switch {
	case mode == 2:
		v.dir.Reset()
	case !v.dir.Ready():
		rev, err := v.currentRevision()
		if err != nil {
			b.Fatal(err)
		}
		if err := v.dir.Load(ctx, rev); err != nil {
			b.Fatal(err)
		}
	}
}

// measureFilter waits for the verifier's first filter, then builds one
// more itself, timing it and counting what it allocates. It returns the
// filter's bytes (with its overlay at its largest).
func (sc *scale) measureFilter(b *testing.B, v *Verifier) (bytes int64, took time.Duration, alloc uint64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !v.Stats().FilterUsable {
		if time.Now().After(deadline) {
			b.Fatalf("no usable filter: %+v", v.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if err := v.buildFilter(context.Background()); err != nil {
		b.Fatal(err)
	}
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	s := v.Stats()
	if s.FilterKeys != int64(len(sc.secrets)) {
		b.Errorf("filter of %d keys, the store holds %d tokens", s.FilterKeys, len(sc.secrets))
	}
	b.Logf("filter of %d tokens: %d bytes, built in %s (the first: %s)", s.FilterKeys, s.FilterBytes,
		took.Round(time.Millisecond), s.FilterBuildTime.Round(time.Millisecond))
	return s.FilterBytes, took, after.TotalAlloc - before.TotalAlloc
}

// forgedNanos is the mean time of verifying a forged token the filter
// refuses, the fallback budget spent.
func (sc *scale) forgedNanos(b *testing.B, v *Verifier) time.Duration {
	b.Helper()
	forged := make([]string, 0, 100_000)
	for len(forged) < cap(forged) {
		tok, err := token.Generate(token.Programmatic)
		if err != nil {
			b.Fatal(err)
		}
		if !v.filter.mayHold(cacheKey(token.Sum(tok))) {
			forged = append(forged, tok)
		}
	}
	ctx := context.Background()
	for _, tok := range forged[:v.Config().FilterFallbacks] {
		v.Verify(ctx, tok)
	}
	lookups := v.Stats().Lookups
	start := time.Now()
	for _, tok := range forged {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknown) {
			b.Fatalf("forged token: %v", err)
		}
	}
	took := time.Since(start)
	b.Logf("%d forged tokens: %d lookups", len(forged), v.Stats().Lookups-lookups)
	return took / time.Duration(len(forged))
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
