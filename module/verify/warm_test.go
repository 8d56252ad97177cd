package verify

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// identityView is what an identity says, comparable with reflect.DeepEqual
// (Identity holds an atomic).
type identityView struct {
	TokenID, UserID, UserName, Type, Org, Level, Role, Account string
	Accounts, Policies                                         []string
	Rules                                                      *policy.Set
	ExpiresAt                                                  time.Time
	AllowedPrefixes                                            []netip.Prefix
	Limit                                                      *Limit
	Disabled, IPRestricted                                     bool
}

func viewOf(id *Identity) identityView {
	return identityView{id.TokenID, id.UserID, id.UserName, id.Type, id.Org, id.Level, id.Role, id.Account,
		id.Accounts, id.Policies, id.Rules, id.ExpiresAt, id.AllowedPrefixes, id.Limit, id.disabled, id.ipRestricted}
}

// TestWarmStartReadsRecentTokens: a verifier that starts reads the tokens
// used within cache_ttl before any request asks for them, many per etcd
// request; their verdicts are those a cold lookup gives, requests for them
// are cache hits, tokens used longer ago are not read, and a change after
// warming is news as for any cached identity.
func TestWarmStartReadsRecentTokens(t *testing.T) {
	cfg := Config{CacheTTL: 5 * time.Minute}
	e := newEnv(t, cfg)
	soon := e.clock.now().Add(time.Hour)
	recent := map[string]func(u *store.User){
		"viewer": nil,
		"policy": func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} },
		"org": func(u *store.User) {
			u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
		},
		"limited": func(u *store.User) {
			u.RateLimit = &store.RateLimit{Requests: 10, Window: "1m"}
			u.AllowedCIDRs = []string{"192.0.2.0/24"}
		},
		"disabled": func(u *store.User) { u.Disabled = true },
		"ui":       func(u *store.User) { u.Type, u.Email = store.TypeUI, "ui@example.com" },
		"expired":  nil, // its token expires before the verifier starts
	}
	secrets := map[string]string{}
	var uses []store.Use
	use := func(name string, u *store.User, at time.Time) {
		l, err := e.writer.LookupToken(e.ctx(), token.Sum(secrets[name]))
		if err != nil || !l.Found {
			t.Fatalf("%s: %v", name, err)
		}
		uses = append(uses, store.Use{Org: u.Org, User: u.ID, Token: l.Token.ID, At: at})
	}
	users := map[string]*store.User{}
	for name, mutate := range recent {
		u := store.User{Org: e.org, Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: e.act1,
			Role: store.RoleViewer, Name: name}
		if mutate != nil {
			mutate(&u)
		}
		kind := token.Programmatic
		if u.Type == store.TypeUI {
			kind = token.Personal
		}
		secret, nt := newToken(t, kind)
		if name == "expired" {
			nt.Token.ExpiresAt = &soon
		}
		created, err := e.writer.CreateUser(e.ctx(), u, &nt, operator)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		users[name], secrets[name] = created, secret
	}
	old, oldSecret := e.user(nil)
	secrets["old"] = oldSecret
	gone, goneSecret := e.user(nil)
	secrets["gone"] = goneSecret

	e.clock.advance(2 * time.Hour)
	now := e.clock.now()
	for name, u := range users {
		use(name, u, now.Add(-time.Minute))
	}
	use("old", old, now.Add(-2*cfg.CacheTTL))
	use("gone", gone, now.Add(-time.Minute))
	if err := e.writer.RecordUses(e.ctx(), uses); err != nil {
		t.Fatal(err)
	}
	if err := e.writer.DeleteUser(e.ctx(), e.org, gone.ID, operator); err != nil {
		t.Fatal(err)
	}

	// A second gateway starts.
	reader := store.New(e.srv.Client(), "/tg")
	cfg.now, cfg.LookupTimeout = e.clock.now, time.Second
	v, err := New(reader, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	deadline := time.Now().Add(10 * time.Second)
	for v.Stats().Warmed < int64(len(recent)) {
		if time.Now().After(deadline) {
			t.Fatalf("warmed %d identities, want %d", v.Stats().Warmed, len(recent))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The seven used lately, none other (the deleted user's last-use time
	// went with it).
	if got := reader.Stats().Lookups; got != int64(len(recent)) {
		t.Errorf("%d tokens read while warming, want %d", got, len(recent))
	}

	for name := range recent {
		rpcs := reader.Stats().RangeRPCs
		id, err := v.Verify(e.ctx(), secrets[name])
		if n := reader.Stats().RangeRPCs - rpcs; n != 0 {
			t.Errorf("%s: a warmed token cost %d etcd requests", name, n)
		}
		full, lerr := e.writer.LookupToken(e.ctx(), token.Sum(secrets[name]))
		if lerr != nil {
			t.Fatal(lerr)
		}
		kind := token.Programmatic
		if users[name].Type == store.TypeUI {
			kind = token.Personal
		}
		want := &entry{identity: identityFrom(full, kind)}
		wantID, wantErr := want.verdict(now)
		switch {
		case !errors.Is(err, wantErr) && !(err == nil && wantErr == nil):
			t.Errorf("%s: warmed verdict %v, cold verdict %v", name, err, wantErr)
		case err == nil && !reflect.DeepEqual(viewOf(id), viewOf(wantID)):
			t.Errorf("%s: warmed identity\n%+v\ncold\n%+v", name, viewOf(id), viewOf(wantID))
		}
	}
	if _, err := v.Verify(e.ctx(), secrets["expired"]); !errors.Is(err, ErrExpired) {
		t.Errorf("expired token: %v", err)
	}
	if _, err := v.Verify(e.ctx(), secrets["disabled"]); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled user: %v", err)
	}
	for _, name := range []string{"old", "gone"} {
		rpcs := reader.Stats().RangeRPCs
		_, err := v.Verify(e.ctx(), secrets[name])
		if reader.Stats().RangeRPCs == rpcs {
			t.Errorf("%s: answered from the cache (%v), want a lookup", name, err)
		}
	}

	// With warm_start off, nothing is read ahead.
	cold := cfg
	cold.NoWarmStart = true
	cv, err := New(store.New(e.srv.Client(), "/tg"), cold)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	if err := cv.WaitForRevision(e.ctx(), v.Stats().WatchRevision); err != nil {
		t.Fatal(err)
	}
	if _, err := cv.Verify(e.ctx(), secrets["policy"]); err != nil || cv.Stats().Warmed != 0 || cv.Stats().Misses != 1 {
		t.Errorf("warm_start off: %v, %+v", err, cv.Stats())
	}

	// A change after warming reaches the warmed identity.
	e.update(users["viewer"], func(u *store.User) { u.Disabled = true })
	resp, err := e.writer.Client().Get(e.ctx(), "/tg/")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WaitForRevision(e.ctx(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(e.ctx(), secrets["viewer"]); !errors.Is(err, ErrDisabled) {
		t.Errorf("viewer disabled after warming: %v", err)
	}
}

// TestReadinessWaitsForFirstWarming: a starting verifier is not ready
// while it warms its cache, for at most warmReadyBound; one with
// warm_start off is ready without it.
func TestReadinessWaitsForFirstWarming(t *testing.T) {
	old := warmReadyBound
	warmReadyBound = 300 * time.Millisecond
	t.Cleanup(func() { warmReadyBound = old })
	release := make(chan struct{})
	var once bool
	e := newEnvWith(t, Config{}, func(v *Verifier) {
		v.beforeWarm = func() {
			if !once {
				once = true
				<-release
			}
		}
	})
	defer close(release)
	// The test clock stands still: within the bound, warming holds
	// readiness back.
	e.filterBuilt()
	e.confirmedNow()
	if r := e.v.Readiness(); r.Ready || !r.Warming || !strings.Contains(r.Reason, "warmed") {
		t.Fatalf("while warming: %+v", r)
	}
	// Past the bound it is ready, warming or not.
	e.clock.advance(warmReadyBound)
	e.confirmedNow()
	if r := e.v.Readiness(); !r.Ready || r.Warming {
		t.Fatalf("past the bound: %+v", r)
	}

	cold := newEnv(t, Config{NoWarmStart: true})
	cold.confirmedNow()
	if r := cold.v.Readiness(); r.Warming {
		t.Fatalf("warm_start off: %+v", r)
	}
}

// TestReadinessAfterWarming: once the first warming ends, the verifier is
// ready at once.
func TestReadinessAfterWarming(t *testing.T) {
	e := newEnv(t, Config{})
	deadline := time.Now().Add(10 * time.Second)
	for e.v.warmPending.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the first warming did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.filterBuilt()
	e.confirmedNow()
	if r := e.v.Readiness(); !r.Ready {
		t.Fatalf("after warming: %+v", r)
	}
}

// BenchmarkWarm measures warming a verifier's cache with tokens used
// lately, one token a user, on a real etcd process (so a CPU profile shows
// the gateway's side alone): warm-ms for the whole warming, and
// warm-us/token. TOKENGATE_WARM_TOKENS sets how many (default 20 000).
//
//	go test -run X -bench Warm -benchtime 3x ./module/verify
func BenchmarkWarm(b *testing.B) {
	n := tokensFromEnv(b, "TOKENGATE_WARM_TOKENS", 20_000, 1)
	st := newScale(b).st // one organization and account on a real etcd process
	ctx := context.Background()
	now := time.Now()
	users := make([]store.User, n)
	tokens := make([]store.NewToken, n)
	uses := make([]store.Use, n)
	for i := range n {
		secret, _ := token.Generate(token.Programmatic)
		users[i] = store.User{ID: store.NewUserID(), Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount,
			Account: "act-00000001", Role: store.RoleViewer, Name: "bot", CreatedAt: now}
		tokens[i] = store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Org: "acme",
			User: users[i].ID, Name: "t", Hint: token.Hint(secret), CreatedAt: now}}
		uses[i] = store.Use{Org: "acme", User: users[i].ID, Token: tokens[i].Token.ID, At: now}
	}
	if err := st.Import(ctx, users, tokens); err != nil {
		b.Fatal(err)
	}
	if err := st.RecordUses(ctx, uses); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for b.Loop() {
		began := time.Now()
		v, err := New(store.New(st.Client(), "/tg"), Config{CacheEntries: 2 * n})
		if err != nil {
			b.Fatal(err)
		}
		for v.Stats().Warmed < int64(n) {
			if time.Since(began) > time.Minute {
				b.Fatalf("warmed %d of %d in a minute", v.Stats().Warmed, n)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(began)
		v.Close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "warm-ms")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/float64(n), "warm-us/token")
}

// filterBuilt waits until the verifier's filter of issued tokens is
// complete (readiness waits for it too).
func (e *env) filterBuilt() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.v.filter.state().complete {
		if time.Now().After(deadline) {
			e.t.Fatal("the filter was not built")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
