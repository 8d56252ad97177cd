package reliability

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// TestAllMembersDown kills every etcd member. Cached identities are served
// until max_stale, then refused with 503 store_unavailable; a token never
// issued gets 401 from the filter of issued tokens until max_stale too; a
// real token not cached gets 503, never 401; a token revoked before the outage stays
// refused; writes fail with store.ErrUnavailable and leave nothing behind.
// When the members are back, the gateway serves again.
func TestAllMembersDown(t *testing.T) {
	const maxStale, cacheTTL = 3 * time.Second, 5 * time.Second
	f := newFixture(t)
	g := f.gateway(t, "G", GatewayConfig{MaxStale: maxStale, CacheTTL: cacheTTL})
	creds := f.users(t, 3)
	cached, uncached, revoked := creds[0], creds[1], creds[2]
	f.admits(t, g, cached)
	f.admits(t, g, revoked)
	f.revoke(t, revoked, 5*time.Second)
	if seen, ok := f.waitUntil(g, revoked.secret, maxRevokeDelay, refused); !ok {
		t.Fatalf("revoked token before the outage: %s", seen[len(seen)-1])
	}
	ctx := ctxT(t, 60*time.Second)
	usersBefore, _, err := f.writer.ListUsers(ctx, f.org, store.UserFilter{}, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	eventsBefore, _, err := f.writer.ListEvents(ctx, f.org, "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}

	// Read less than cache_ttl ago, the cached identity is ended by
	// max_stale, not by cache_ttl, during the outage.
	f.admits(t, g, cached)
	down := time.Now()
	for i := range f.cluster.Size() {
		f.cluster.Kill(i)
	}
	t.Logf("all etcd members killed")

	var (
		mu      sync.Mutex
		results = map[string][]Result{}
		wg      sync.WaitGroup
	)
	// Each kind of token is asked for in a loop of its own: a request that
	// has to reach etcd waits for its lookup to time out, and must not
	// hold up the others.
	until := down.Add(maxStale + 3*time.Second)
	ask := func(kind string, tok func() string) {
		wg.Go(func() {
			for time.Now().Before(until) {
				r := g.Do(context.Background(), f.hc, "outage", tok())
				mu.Lock()
				results[kind] = append(results[kind], r)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	ask("cached", func() string { return cached.secret })
	ask("uncached", func() string { return uncached.secret })
	ask("revoked", func() string { return revoked.secret })
	ask("never issued", func() string {
		tok, err := token.Generate(token.Programmatic)
		if err != nil {
			t.Error(err)
		}
		return tok
	})

	// Writes fail as unavailable, whatever they were.
	_, nt := newToken(t)
	writes := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"create user", func(ctx context.Context) error {
			_, err := f.writer.CreateUser(ctx, store.User{
				Org: f.org, Type: store.TypeProgrammatic, Level: store.LevelAccount,
				Account: f.account, Role: store.RoleViewer, Name: "during outage",
			}, &nt, operator)
			return err
		}},
		{"revoke token", func(ctx context.Context) error {
			return f.writer.RevokeToken(ctx, f.org, cached.userID, cached.tokenID, operator)
		}},
		{"delete user", func(ctx context.Context) error {
			return f.writer.DeleteUser(ctx, f.org, uncached.userID, operator)
		}},
	}
	for _, w := range writes {
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := w.do(wctx)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with etcd down: %v, want store.ErrUnavailable", w.name, err)
		}
	}
	wg.Wait()

	// Served from the cache until max_stale after the last sign of sync,
	// then 503. That sign came before the kill, by at most two heartbeats
	// (a quiet watch asks for news every max_stale/5).
	const slack = 250 * time.Millisecond
	signAge := 2 * maxStale / 5
	var lastServed, firstRefused time.Duration
	for _, r := range results["cached"] {
		at := r.Start.Sub(down)
		switch {
		case r.Status == http.StatusOK && r.TokenID == cached.tokenID:
			if at > maxStale+slack {
				t.Errorf("cached identity served %s into the outage, max_stale is %s", at, maxStale)
			}
			lastServed = max(lastServed, at)
		case unavailable(r):
			if at < maxStale-signAge-slack {
				t.Errorf("cached identity refused %s into the outage, before max_stale (%s): %s", at, maxStale, r)
			}
			if firstRefused == 0 || at < firstRefused {
				firstRefused = at
			}
		default:
			t.Errorf("cached identity %s into the outage: %s", at, r)
		}
	}
	if lastServed < maxStale-signAge-slack || firstRefused == 0 {
		t.Errorf("cached identity last served %s, first refused %s into the outage", lastServed, firstRefused)
	}
	t.Logf("cached identity: served until %s into the outage, 503 from %s (max_stale %s)", lastServed, firstRefused, maxStale)
	for _, r := range results["uncached"] {
		if !unavailable(r) {
			t.Errorf("uncached token during the outage: %s, want 503 store_unavailable", r)
		}
	}
	// A token never issued is refused from memory (the filter of issued
	// tokens) as long as the watch was in sync within max_stale, as
	// cached identities are served; then the filter may not answer, and
	// the token gets 503 like any other not cached.
	var lastRefused time.Duration
	for _, r := range results["never issued"] {
		at := r.Start.Sub(down)
		switch {
		case refused(r):
			if at > maxStale+slack {
				t.Errorf("never issued token refused from memory %s into the outage, max_stale is %s", at, maxStale)
			}
			lastRefused = max(lastRefused, at)
		case unavailable(r):
			if at < maxStale-signAge-slack {
				t.Errorf("never issued token %s into the outage: 503, want 401 while the filter is in sync", at)
			}
		default:
			t.Errorf("never issued token %s into the outage: %s", at, r)
		}
	}
	if lastRefused < maxStale-signAge-slack {
		t.Errorf("never issued tokens refused from memory only until %s into the outage", lastRefused)
	}
	for _, r := range results["revoked"] {
		if !refused(r) && !unavailable(r) {
			t.Errorf("token revoked before the outage: %s, want 401 or 503", r)
		}
	}
	for kind, rs := range results {
		t.Logf("%s: %d requests during the outage", kind, len(rs))
	}
	if t.Failed() {
		t.FailNow()
	}

	// Back: the same answers as before the outage, and nothing of the
	// failed writes.
	back := time.Now()
	for i := range f.cluster.Size() {
		f.cluster.Restart(i)
	}
	f.cluster.WaitHealthy(30 * time.Second)
	if seen, ok := f.waitUntil(g, cached.secret, 15*time.Second, func(r Result) bool { return r.Status == http.StatusOK }); !ok {
		t.Fatalf("cached identity after the outage: %s", seen[len(seen)-1])
	}
	t.Logf("gateway serves again %s after the restart began", time.Since(back))
	f.admits(t, g, cached)
	f.admits(t, g, uncached)
	if r := g.Do(ctx, f.hc, "after", revoked.secret); !refused(r) {
		t.Errorf("token revoked before the outage, after it: %s", r)
	}
	if l, err := f.writer.LookupToken(ctx, nt.Hash); err != nil || l.Found {
		t.Errorf("token of the user created during the outage: %+v, %v", l, err)
	}
	usersAfter, _, err := f.writer.ListUsers(ctx, f.org, store.UserFilter{}, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	eventsAfter, _, err := f.writer.ListEvents(ctx, f.org, "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(usersAfter) != len(usersBefore) || len(eventsAfter) != len(eventsBefore) {
		t.Errorf("after failed writes: %d users (%d before), %d audit events (%d before)",
			len(usersAfter), len(usersBefore), len(eventsAfter), len(eventsBefore))
	}
	// And writes work again.
	c, err := f.createUser(t, ctx, f.writer)
	if err != nil {
		t.Fatal(err)
	}
	f.admits(t, g, c)
}
