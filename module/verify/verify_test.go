package verify

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

var operator = store.Actor{ID: "operator", Type: store.ActorOperator}

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one etcd server, a writer store (the admin side) and a verifier
// on its own client and store: a second instance, as another gateway would
// be.
type env struct {
	t      *testing.T
	srv    *etcdtest.Server
	writer *store.Store
	reader *store.Store
	v      *Verifier
	clock  *clock
	org    string
	act1   string
	act2   string
	pol    string
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv with fault injection set on the verifier before it
// starts.
func newEnvWith(t *testing.T, cfg Config, hooks func(v *Verifier)) *env {
	t.Helper()
	srv := etcdtest.Start(t)
	e := &env{t: t, srv: srv, writer: store.New(srv.Client(), "/tg"), reader: store.New(srv.Client(), "/tg"), org: "acme"}
	if cfg.now == nil {
		e.clock = newClock()
		cfg.now = e.clock.now
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = 500 * time.Millisecond
	}
	ctx := e.ctx()
	if _, err := e.writer.CreateOrg(ctx, store.Org{ID: e.org, Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&e.act1, &e.act2} {
		a, err := e.writer.CreateAccount(ctx, store.Account{Org: e.org, Name: "a"}, operator)
		if err != nil {
			t.Fatal(err)
		}
		*p = a.ID
	}
	p, err := e.writer.CreatePolicy(ctx, store.Policy{Org: e.org, Name: "read", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/*"}}}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	e.pol = p.ID
	v, err := newWithHooks(e.reader, cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	e.v = v
	e.synced()
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// synced waits until the verifier's watch has applied everything written
// so far.
func (e *env) synced() {
	e.t.Helper()
	ctx := e.ctx()
	resp, err := e.writer.Client().Get(ctx, "/tg/", clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.v.WaitForRevision(ctx, resp.Header.Revision); err != nil {
		e.t.Fatalf("watch did not reach revision %d: %v", resp.Header.Revision, err)
	}
}

// trustsCopies waits until the verifier's store trusts the copies under
// tokens' digests: the store at schema 3 and swept.
func (e *env) trustsCopies() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.reader.CopiesTrusted() {
		if time.Now().After(deadline) {
			e.t.Fatal("the copies are not trusted at schema 3")
		}
		time.Sleep(5 * time.Millisecond) // polling a flag, with a deadline
	}
}

// confirmedNow waits until the watch has been confirmed in sync by a
// quorum read sent at the test clock's current time.
func (e *env) confirmedNow() {
	e.t.Helper()
	want := e.clock.now().UnixNano()
	deadline := time.Now().Add(10 * time.Second)
	for e.v.changes.newsAt.Load() < want {
		if time.Now().After(deadline) {
			e.t.Fatal("the watch was not confirmed in sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) user(mutate func(u *store.User)) (*store.User, string) {
	e.t.Helper()
	u := store.User{Org: e.org, Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: e.act1, Role: store.RoleViewer, Name: "bot"}
	if mutate != nil {
		mutate(&u)
	}
	kind := token.Programmatic
	if u.Type == store.TypeUI {
		kind = token.Personal
	}
	secret, nt := newToken(e.t, kind)
	created, err := e.writer.CreateUser(e.ctx(), u, &nt, operator)
	if err != nil {
		e.t.Fatal(err)
	}
	return created, secret
}

func newToken(t *testing.T, kind token.Kind) (string, store.NewToken) {
	t.Helper()
	secret, err := token.Generate(kind)
	if err != nil {
		t.Fatal(err)
	}
	return secret, store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
}

func (e *env) mustVerify(secret string) *Identity {
	e.t.Helper()
	id, err := e.v.Verify(e.ctx(), secret)
	if err != nil {
		e.t.Fatalf("Verify: %v", err)
	}
	return id
}

func (e *env) wantErr(secret string, want error) {
	e.t.Helper()
	id, err := e.v.Verify(e.ctx(), secret)
	if !errors.Is(err, want) {
		e.t.Fatalf("Verify = %+v, %v; want %v", id, err, want)
	}
}

func TestVerifyHitAndMiss(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} })
	id := e.mustVerify(secret)
	if id.UserID != u.ID || id.Type != store.TypeProgrammatic || id.Org != e.org || id.Account != e.act1 ||
		id.Role != store.RolePolicy || len(id.Policies) != 1 || !id.Reaches(e.act1) || id.Reaches(e.act2) || id.TokenID == "" {
		t.Fatalf("identity = %+v", id)
	}
	before := e.v.Stats()
	if again := e.mustVerify(secret); again != id {
		t.Fatal("second verification did not come from the cache")
	}
	after := e.v.Stats()
	if after.Hits != before.Hits+1 || after.Lookups != before.Lookups {
		t.Fatalf("stats %+v -> %+v", before, after)
	}
}

func TestMalformedNeverLooksUp(t *testing.T) {
	e := newEnv(t, Config{})
	good, _ := newToken(t, token.Programmatic)
	last := "x"
	if strings.HasSuffix(good, last) {
		last = "y"
	}
	for _, bad := range []string{"", "Bearer", "tgp_short", good[:len(good)-1] + last, string(make([]byte, 4096))} {
		e.wantErr(bad, ErrMalformed)
	}
	if s := e.v.Stats(); s.Lookups != 0 || s.Misses != 0 {
		t.Fatalf("malformed tokens reached the store: %+v", s)
	}
}

// TestSingleflight: 1000 concurrent verifications of one uncached token
// cost exactly one lookup.
func TestSingleflight(t *testing.T) {
	e := newEnv(t, Config{})
	_, secret := e.user(nil)
	before := e.reader.Stats()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 1000 {
		wg.Go(func() {
			<-start
			if _, err := e.v.Verify(context.Background(), secret); err != nil {
				failures.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d verifications failed", failures.Load())
	}
	after := e.reader.Stats()
	if got := after.Lookups - before.Lookups; got != 1 {
		t.Fatalf("%d lookups for 1000 concurrent verifications, want 1", got)
	}
	t.Logf("one lookup = %d etcd range requests", after.RangeRPCs-before.RangeRPCs)
}

// TestUnknownTokensRemembered: a flood of one unknown token costs one
// lookup per negative_ttl.
func TestUnknownTokensRemembered(t *testing.T) {
	e := newEnv(t, Config{NegativeTTL: 10 * time.Second})
	unknown, _ := newToken(t, token.Programmatic)
	for range 500 {
		e.wantErr(unknown, ErrUnknown)
	}
	if got := e.reader.Stats().Lookups; got != 1 {
		t.Fatalf("%d lookups for 500 verifications of one unknown token", got)
	}
	e.clock.advance(10 * time.Second)
	e.wantErr(unknown, ErrUnknown)
	if got := e.reader.Stats().Lookups; got != 2 {
		t.Fatalf("after negative_ttl: %d lookups, want 2", got)
	}
}

// TestTokenKindMustMatchUserType: a personal-token prefix on a
// programmatic user's record (or the reverse) is not honoured.
func TestTokenKindMustMatchUserType(t *testing.T) {
	e := newEnv(t, Config{})
	u, _ := e.user(nil)
	secret, nt := newToken(t, token.Personal)
	nt.Token.Org, nt.Token.User = e.org, u.ID
	if _, err := e.writer.CreateToken(e.ctx(), nt, nil, operator); err != nil {
		t.Fatal(err)
	}
	e.wantErr(secret, ErrUnknown)
}

// TestAllowedIPs: the identity carries the user's networks; IPv4 clients
// match IPv4 networks also as IPv4-mapped IPv6 addresses; without a known
// client address only users without networks pass; a stored list that does
// not parse (written past the admin API) admits nobody.
func TestAllowedIPs(t *testing.T) {
	e := newEnv(t, Config{})
	_, open := e.user(nil)
	limited, limitedTok := e.user(func(u *store.User) { u.AllowedCIDRs = []string{"10.0.0.0/8", "2001:db8::/32"} })
	if id := e.mustVerify(open); id.RestrictsIP() || !id.AdmitsIP(netip.Addr{}) || !id.AdmitsIP(netip.MustParseAddr("192.0.2.1")) {
		t.Fatalf("a user without networks is restricted: %+v", id.AllowedPrefixes)
	}
	id := e.mustVerify(limitedTok)
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "2001:db8::1": true, "2001:db8::1%eth0": true,
		"11.0.0.1": false, "::ffff:11.0.0.1": false, "2001:db9::1": false, "::1": false, "127.0.0.1": false,
		"::a01:203": false, // the IPv4-compatible form is IPv6, not 10.1.2.3
	} {
		if got := id.AdmitsIP(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AdmitsIP(%s) = %v, want %v", addr, got, want)
		}
	}
	if id.AdmitsIP(netip.Addr{}) {
		t.Error("a restricted user is admitted from an unknown address")
	}

	// Damaged in etcd: the list restricts, and admits nobody.
	raw, err := e.writer.Client().Get(e.ctx(), "/tg/users/"+e.org+"/"+limited.ID)
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("reading the user: %v", err)
	}
	damaged := strings.Replace(string(raw.Kvs[0].Value), `"10.0.0.0/8","2001:db8::/32"`, `"10.0.0.0/99","not a network"`, 1)
	if damaged == string(raw.Kvs[0].Value) {
		t.Fatalf("allowed_cidrs not found in %s", raw.Kvs[0].Value)
	}
	if _, err := e.writer.Client().Put(e.ctx(), "/tg/users/"+e.org+"/"+limited.ID, damaged); err != nil {
		t.Fatal(err)
	}
	e.synced()
	if id := e.mustVerify(limitedTok); !id.RestrictsIP() || id.AdmitsIP(netip.MustParseAddr("10.1.2.3")) || len(id.AllowedPrefixes) != 0 {
		t.Fatalf("a damaged list: restricted %v, prefixes %v", id.RestrictsIP(), id.AllowedPrefixes)
	}
}

// TestInvalidation checks every kind of change a cached identity depends
// on, made through another store (another instance), reaching the verifier
// through its watch alone.
func TestInvalidation(t *testing.T) {
	tests := []struct {
		name   string
		user   func(e *env, u *store.User)
		change func(e *env, u *store.User, secret string)
		check  func(e *env, secret string)
	}{
		{
			name: "token revoked",
			change: func(e *env, u *store.User, secret string) {
				toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
				if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, toks[0].ID, operator); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) { e.wantErr(secret, ErrUnknown) },
		},
		{
			name: "token expiry shortened by rotation",
			change: func(e *env, u *store.User, secret string) {
				toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
				_, nt := newToken(e.t, token.Programmatic)
				nt.Token.Org, nt.Token.User = e.org, u.ID
				e.writer.Now = e.clock.now
				if _, err := e.writer.CreateToken(e.ctx(), nt, &store.Rotation{Replaces: toks[0].ID, Overlap: time.Minute}, operator); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) {
				e.mustVerify(secret)
				e.clock.advance(time.Minute)
				e.wantErr(secret, ErrExpired)
			},
		},
		{
			name: "user deleted",
			change: func(e *env, u *store.User, secret string) {
				if err := e.writer.DeleteUser(e.ctx(), e.org, u.ID, operator); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) { e.wantErr(secret, ErrUnknown) },
		},
		{
			name: "user disabled",
			change: func(e *env, u *store.User, secret string) {
				e.update(u, func(u *store.User) { u.Disabled = true })
			},
			check: func(e *env, secret string) { e.wantErr(secret, ErrDisabled) },
		},
		{
			name: "user role edited",
			change: func(e *env, u *store.User, secret string) {
				e.update(u, func(u *store.User) { u.Role = store.RoleAdmin })
			},
			check: func(e *env, secret string) {
				if id := e.mustVerify(secret); id.Role != store.RoleAdmin {
					e.t.Fatalf("role = %s", id.Role)
				}
			},
		},
		{
			name: "allowed networks added",
			change: func(e *env, u *store.User, secret string) {
				e.update(u, func(u *store.User) { u.AllowedCIDRs = []string{"10.0.0.0/8"} })
			},
			check: func(e *env, secret string) {
				id := e.mustVerify(secret)
				if !id.RestrictsIP() || id.AdmitsIP(netip.MustParseAddr("127.0.0.1")) || !id.AdmitsIP(netip.MustParseAddr("10.1.2.3")) {
					e.t.Fatalf("allowed networks %v not in effect", id.AllowedPrefixes)
				}
			},
		},
		{
			name: "allowed networks cleared",
			user: func(e *env, u *store.User) { u.AllowedCIDRs = []string{"10.0.0.0/8"} },
			change: func(e *env, u *store.User, secret string) {
				e.update(u, func(u *store.User) { u.AllowedCIDRs = nil })
			},
			check: func(e *env, secret string) {
				if id := e.mustVerify(secret); id.RestrictsIP() || !id.AdmitsIP(netip.MustParseAddr("127.0.0.1")) {
					e.t.Fatalf("cleared networks still in effect: %v", id.AllowedPrefixes)
				}
			},
		},
		{
			name: "user accounts edited",
			user: func(e *env, u *store.User) {
				u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
			},
			change: func(e *env, u *store.User, secret string) {
				e.update(u, func(u *store.User) { u.Accounts = []string{e.act2} })
			},
			check: func(e *env, secret string) {
				if id := e.mustVerify(secret); id.Reaches(e.act1) || !id.Reaches(e.act2) {
					e.t.Fatalf("accounts = %v", id.Accounts)
				}
			},
		},
		{
			name: "policy edited",
			user: func(e *env, u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} },
			change: func(e *env, u *store.User, secret string) {
				doc := store.Policy{Name: "write", Statements: []store.Statement{{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/**"}}}}
				if _, err := e.writer.ReplacePolicy(e.ctx(), e.org, e.pol, doc, nil, operator); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) {
				id := e.mustVerify(secret)
				if readings, _ := policy.Readings("/x/y", ""); !id.Rules.Allows("DELETE", readings) {
					e.t.Fatalf("edited policy not in effect: %+v", id.Rules)
				}
			},
		},
		{
			// The admin API refuses to delete a held policy; a policy that
			// vanishes anyway (an operator editing etcd) takes its grants.
			name: "policy deleted",
			user: func(e *env, u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} },
			change: func(e *env, u *store.User, secret string) {
				if _, err := e.writer.Client().Delete(e.ctx(), "/tg/policies/"+e.org+"/"+e.pol); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) {
				id := e.mustVerify(secret)
				if readings, _ := policy.Readings("/api/x", ""); len(id.Policies) != 0 || id.Rules.Allows("GET", readings) {
					e.t.Fatalf("deleted policy still in effect: %v", id.Policies)
				}
			},
		},
		{
			name: "account deleted",
			user: func(e *env, u *store.User) {
				u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
			},
			change: func(e *env, u *store.User, secret string) {
				if err := e.writer.DeleteAccount(e.ctx(), e.org, e.act2, operator); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) {
				if id := e.mustVerify(secret); id.Reaches(e.act2) || !id.Reaches(e.act1) {
					e.t.Fatalf("accounts = %v", id.Accounts)
				}
			},
		},
		{
			name: "own account deleted under an account-level user",
			change: func(e *env, u *store.User, secret string) {
				if _, err := e.writer.Client().Delete(e.ctx(), "/tg/accounts/"+e.org+"/"+e.act1); err != nil {
					e.t.Fatal(err)
				}
			},
			check: func(e *env, secret string) {
				if id := e.mustVerify(secret); id.Reaches(e.act1) {
					e.t.Fatalf("accounts = %v", id.Accounts)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			var mutate func(u *store.User)
			if tt.user != nil {
				mutate = func(u *store.User) { tt.user(e, u) }
			}
			u, secret := e.user(mutate)
			e.mustVerify(secret)
			e.mustVerify(secret) // cached now
			if e.v.Stats().Hits == 0 {
				t.Fatal("identity not cached")
			}
			tt.change(e, u, secret)
			e.synced()
			tt.check(e, secret)
		})
	}
}

// holdWatch breaks the verifier's watch, as a lost connection would, and
// keeps it from starting again until the returned release is called (fault
// injection). It returns once the watch is down.
func (e *env) holdWatch() (release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.v.beforeWatch = func() { once.Do(func() { close(held); <-hold }) }
	e.v.breakWatch()
	<-held
	var released sync.Once
	return func() { released.Do(func() { close(hold) }) }
}

func (e *env) update(u *store.User, change func(u *store.User)) {
	e.t.Helper()
	if _, err := e.writer.UpdateUser(e.ctx(), e.org, u.ID, func(u *store.User) error { change(u); return nil }, operator); err != nil {
		e.t.Fatal(err)
	}
}

// TestStaleFillRace: a fill that read etcd before a revocation must not
// leave the revoked identity behind once the watch has applied it.
func TestStaleFillRace(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(nil)
	read := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.v.afterLookup = func() {
		once.Do(func() {
			close(read)
			<-release
		})
	}
	type result struct {
		id  *Identity
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := e.v.Verify(context.Background(), secret)
		done <- result{id, err}
	}()
	<-read // the fill has read the token as valid
	toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, toks[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	e.synced() // the watch has applied the revocation...
	close(release)
	r := <-done // ...before the fill tries to cache what it read
	if !errors.Is(r.err, ErrUnknown) {
		t.Fatalf("racing verification = %+v, %v; want ErrUnknown", r.id, r.err)
	}
	for range 3 {
		e.wantErr(secret, ErrUnknown)
	}
}

// TestCompactionFlushes: the watch is held down while the token is revoked
// and the history compacted; when it comes back it cannot resume, so it
// drops the cache, and the revoked token is refused.
func TestCompactionFlushes(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(nil)
	e.mustVerify(secret)

	release := e.holdWatch()

	toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, toks[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	// While the watch is down the cached identity is still honoured: that
	// is the window cache_ttl and max_stale bound.
	e.mustVerify(secret)
	// One more change, then compact: the watch's resume revision is gone.
	if _, err := e.writer.CreateAccount(e.ctx(), store.Account{Org: e.org, Name: "later"}, operator); err != nil {
		t.Fatal(err)
	}
	e.srv.Compact(e.ctx())
	flushes := e.v.Stats().Flushes
	release()
	e.synced()
	if e.v.Stats().Flushes <= flushes {
		t.Fatal("watch resumed past a compaction without flushing")
	}
	e.wantErr(secret, ErrUnknown)
}

// TestWatchResumesWithoutLoss: a broken watch resumes from its revision, and
// a revocation made while it was down is applied on resume.
func TestWatchResumesWithoutLoss(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(nil)
	e.mustVerify(secret)
	release := e.holdWatch()
	toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, toks[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	flushes := e.v.Stats().Flushes
	release()
	e.synced()
	e.wantErr(secret, ErrUnknown)
	if e.v.Stats().Flushes != flushes {
		t.Fatal("an ordinary resume flushed the cache")
	}
}

// TestCacheTTLBound: with the watch down, a change still takes effect once
// cache_ttl has passed.
func TestCacheTTLBound(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: time.Minute, MaxStale: time.Minute})
	u, secret := e.user(nil)
	e.mustVerify(secret)
	t.Cleanup(e.holdWatch())
	e.update(u, func(u *store.User) { u.Disabled = true })
	e.clock.advance(59 * time.Second)
	e.mustVerify(secret) // still within cache_ttl, nothing told us
	e.clock.advance(time.Second)
	e.wantErr(secret, ErrDisabled)
}

// TestEtcdDown: cached identities are honoured for max_stale after the last
// news from etcd, then refused with ErrUnavailable; uncached tokens get
// ErrUnavailable at once, never ErrUnknown; a token revoked before the
// outage stays refused (ErrUnknown once the filter of issued tokens was
// built without it: filter_test.go covers tokens never issued).
func TestEtcdDown(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: 5 * time.Minute, MaxStale: time.Minute, NegativeTTL: 10 * time.Second})
	_, cached := e.user(nil)
	_, uncached := e.user(nil)
	_, revoked := e.user(nil)
	e.mustVerify(cached)
	e.mustVerify(revoked)
	if err := e.writer.DeleteUser(e.ctx(), e.org, e.userOf(revoked), operator); err != nil {
		t.Fatal(err)
	}
	e.synced()
	e.wantErr(revoked, ErrUnknown)

	e.srv.Stop()
	e.clock.advance(5 * time.Second)
	e.mustVerify(cached)
	e.wantErr(uncached, ErrUnavailable)
	e.wantErr(revoked, ErrUnknown) // remembered as unknown within negative_ttl
	e.clock.advance(25 * time.Second)
	e.mustVerify(cached)
	// Still refused, never admitted.
	if _, err := e.v.Verify(e.ctx(), revoked); !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrUnknown) {
		t.Fatalf("revoked token past negative_ttl during the outage: %v", err)
	}
	e.clock.advance(31 * time.Second)
	e.wantErr(cached, ErrUnavailable) // past max_stale

	// Back up: the watch resumes and everything works again.
	e.srv.Restart()
	e.synced()
	e.confirmedNow()
	e.mustVerify(cached)
	e.mustVerify(uncached)
	e.wantErr(revoked, ErrUnknown)
}

// TestKnownOutageAnswersAtOnce: once the store is known to be unreachable,
// a token not cached gets ErrUnavailable without a lookup, rather than
// after a lookup's timeout; when etcd is back, lookups resume.
func TestKnownOutageAnswersAtOnce(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: 5 * time.Minute, MaxStale: time.Minute})
	_, uncached := e.user(nil)
	e.srv.Stop()
	e.clock.advance(10 * time.Second)
	e.waitFor("the outage noticed", 10*time.Second, e.v.Down)
	before := e.v.Stats().Lookups
	for range 5 {
		e.wantErr(uncached, ErrUnavailable)
	}
	if n := e.v.Stats().Lookups - before; n != 0 {
		t.Fatalf("%d lookups while etcd was known to be down", n)
	}
	e.srv.Restart()
	e.synced()
	e.confirmedNow()
	e.waitFor("the recovery noticed", 10*time.Second, func() bool { return !e.v.Down() })
	e.mustVerify(uncached)
}

// TestStaleServedPastCacheTTLWithinMaxStale: an entry past cache_ttl is
// read again; if etcd does not answer, it is honoured while within
// max_stale of the last news.
func TestStaleServedPastCacheTTLWithinMaxStale(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: time.Minute, MaxStale: time.Minute})
	_, secret := e.user(nil)
	e.mustVerify(secret)
	e.clock.advance(50 * time.Second)
	e.confirmedNow() // news at +50s
	e.mustVerify(secret)
	e.srv.Stop()
	e.clock.advance(20 * time.Second) // +70s: past cache_ttl, 20s after news
	e.mustVerify(secret)
	if e.v.Stats().StaleServed == 0 {
		t.Fatal("entry past cache_ttl was not re-read")
	}
	e.clock.advance(41 * time.Second) // 61s after news
	e.wantErr(secret, ErrUnavailable)
}

func (e *env) userOf(secret string) string {
	e.t.Helper()
	l, err := e.writer.LookupToken(e.ctx(), token.Sum(secret))
	if err != nil || !l.Found {
		e.t.Fatalf("lookup: %+v %v", l, err)
	}
	return l.User.ID
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{CacheEntries: -1},
		{CacheTTL: time.Millisecond},
		{MaxStale: 10 * time.Minute}, // > default cache_ttl
		{NegativeTTL: -time.Second},
	} {
		if err := c.fill(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := e.v.Verify(context.Background(), e.secrets[i%len(e.secrets)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.v.Verify(context.Background(), e.secrets[i%len(e.secrets)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

type benchEnvT struct {
	v       *Verifier
	secrets []string
}

// benchEnv caches 1000 tokens of 1000 users.
func benchEnv(b *testing.B) benchEnvT {
	b.Helper()
	return benchEnvWith(b, Config{})
}

// benchEnvWith is benchEnv with a verifier of the given configuration.
func benchEnvWith(b *testing.B, cfg Config) benchEnvT {
	b.Helper()
	srv := etcdtest.Start(b)
	s := store.New(srv.Client(), "/tg")
	ctx := context.Background()
	if _, err := s.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		b.Fatal(err)
	}
	a, err := s.CreateAccount(ctx, store.Account{Org: "acme", Name: "a"}, operator)
	if err != nil {
		b.Fatal(err)
	}
	v, err := New(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	out := benchEnvT{v: v}
	for range 1000 {
		secret, _ := token.Generate(token.Programmatic)
		nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID()}}
		u := store.User{Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: a.ID, Role: store.RoleViewer, Name: "bot"}
		if _, err := s.CreateUser(ctx, u, &nt, operator); err != nil {
			b.Fatal(err)
		}
		out.secrets = append(out.secrets, secret)
	}
	resp, _ := s.Client().Get(ctx, "/tg/", clientv3.WithCountOnly())
	if err := v.WaitForRevision(ctx, resp.Header.Revision); err != nil {
		b.Fatal(err)
	}
	for _, secret := range out.secrets {
		if _, err := v.Verify(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// TestUseIsBatched: 10 000 verifications of one token over two and a half
// minutes make at most one etcd write per token per minute, and the time
// shows in the token listing.
func TestUseIsBatched(t *testing.T) {
	// Long enough bounds that the fake clock never forces a refill; a
	// refill is covered by TestUseSurvivesRefill.
	e := newEnv(t, Config{CacheTTL: 10 * time.Minute, MaxStale: 10 * time.Minute})
	u, secret := e.user(nil)
	start := e.clock.now()
	for i := range 10_000 {
		e.mustVerify(secret)
		e.clock.advance(15 * time.Millisecond)
		if i%1000 == 999 {
			e.v.FlushUse(e.ctx()) // as the background flusher would, often
		}
	}
	e.v.FlushUse(e.ctx())
	if w := e.reader.Stats().UsageWrites; w < 1 || w > 3 {
		t.Fatalf("%d usage writes for 10 000 requests over 150 s, want 1 to 3", w)
	}
	toks, err := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err != nil || toks[0].LastUsedAt == nil || toks[0].LastUsedAt.Before(start) {
		t.Fatalf("last_used_at = %v, %v", toks[0].LastUsedAt, err)
	}
}

// TestUseSurvivesRefill: when an identity is read again (cache_ttl), its
// last noted use carries over: no second note within the minute.
func TestUseSurvivesRefill(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: 10 * time.Second, MaxStale: 10 * time.Second})
	_, secret := e.user(nil)
	e.mustVerify(secret)
	e.v.FlushUse(e.ctx())
	for range 3 {
		e.clock.advance(11 * time.Second) // past cache_ttl: read again
		e.synced()
		e.confirmedNow() // past max_stale too: in sync as of now
		e.mustVerify(secret)
		e.v.FlushUse(e.ctx()) // a second note would be a second write
	}
	if s := e.reader.Stats(); s.Lookups < 4 || s.UsageWrites != 1 {
		t.Fatalf("%d lookups, %d usage writes; want at least 4 lookups and 1 write", s.Lookups, s.UsageWrites)
	}
}

// TestUseFlushedOnClose: use noted just before shutdown is not lost.
func TestUseFlushedOnClose(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(nil)
	e.mustVerify(secret)
	e.v.Close()
	toks, err := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err != nil || toks[0].LastUsedAt == nil {
		t.Fatalf("last_used_at after close = %v, %v", toks[0].LastUsedAt, err)
	}
}

// TestUseOfRevokedTokenNotRecorded: a use flushed after the token was
// revoked leaves nothing behind.
func TestUseOfRevokedTokenNotRecorded(t *testing.T) {
	e := newEnv(t, Config{})
	u, secret := e.user(nil)
	e.mustVerify(secret)
	toks, _ := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, toks[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	e.v.FlushUse(e.ctx())
	resp, err := e.writer.Client().Get(e.ctx(), "/tg/_lastused/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("%d last-use records left for a revoked token (%v)", resp.Count, err)
	}
}

// TestHistoryFrom: a progress notification claiming revisions no event has
// reached is trusted only while etcd still holds them; historyFrom says
// whether it does.
func TestHistoryFrom(t *testing.T) {
	e := newEnv(t, Config{})
	e.user(nil)
	client := e.v.store.Client()
	resp, err := client.Get(e.ctx(), "/tg/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	for _, c := range []struct {
		name string
		rev  int64
		want bool
	}{{"held", rev - 1, true}, {"the next revision, not yet written", rev + 1, true}} {
		if got, err := e.v.historyFrom(e.ctx(), client, c.rev); err != nil || got != c.want {
			t.Fatalf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	e.user(nil)
	e.srv.Compact(e.ctx())
	if got, err := e.v.historyFrom(e.ctx(), client, rev-1); err != nil || got {
		t.Fatalf("compacted past: %v, %v; want false", got, err)
	}
}

// TestEntryVisibleWhenVerifyReturns: once a cold verification returns,
// its verdict is in the cache: the next verification of the token, at
// once, costs no lookup, token after token.
func TestEntryVisibleWhenVerifyReturns(t *testing.T) {
	e := newEnv(t, Config{})
	var secrets []string
	for range 100 {
		_, secret := e.user(nil)
		secrets = append(secrets, secret)
	}
	e.synced()
	for i, secret := range secrets {
		e.mustVerify(secret)
		before := e.v.Stats().Lookups
		e.mustVerify(secret)
		if n := e.v.Stats().Lookups - before; n != 0 {
			t.Fatalf("token %d: the verification right after the first took %d lookups", i, n)
		}
	}
	if n := e.v.Stats().CacheSetsDropped; n != 0 {
		t.Errorf("%d cache inserts dropped with no contention", n)
	}
}
