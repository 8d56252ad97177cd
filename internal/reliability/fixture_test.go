package reliability

import (
	"context"
	"net/http"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/etcdcluster"
	"github.com/tokengate/tokengate/internal/testenv"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(func() int { return Main(m) })) }

// prefix is where the tests keep tokengate's data in etcd.
const prefix = "/tg"

var operator = store.Actor{ID: "operator", Type: store.ActorOperator}

// fixture is a cluster with an organization and an account in it, an echo
// upstream for gateways, and a store writing as an admin on another
// instance would. Its methods take the (sub)test they act for.
type fixture struct {
	cluster  *etcdcluster.Cluster
	writer   *store.Store
	org      string
	account  string
	upstream string
	hc       *http.Client
}

// newFixture starts a 3-member cluster. The writer talks to writerMembers
// (all members when none is given).
func newFixture(t *testing.T, writerMembers ...int) *fixture {
	t.Helper()
	return newFixtureOf(t, 3, writerMembers...)
}

// newFixtureOf is newFixture on a cluster of the given size.
func newFixtureOf(t *testing.T, size int, writerMembers ...int) *fixture {
	t.Helper()
	c := etcdcluster.Start(t, size)
	f := &fixture{
		cluster:  c,
		writer:   store.New(c.ClientOf(writerMembers...), prefix),
		org:      "acme",
		upstream: EchoUpstream(t),
		// Longer than any wait tokengate imposes (a lookup gives up after
		// 2s), so that every request gets tokengate's own answer.
		hc: HTTPClient(t, 10*time.Second),
	}
	ctx := ctxT(t, 30*time.Second)
	if _, err := f.writer.CreateOrg(ctx, store.Org{ID: f.org, Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	a, err := f.writer.CreateAccount(ctx, store.Account{Org: f.org, Name: "prod"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	f.account = a.ID
	return f
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// gateway starts a tokengate instance on the given members (all when
// none is given).
func (f *fixture) gateway(t *testing.T, name string, cfg GatewayConfig, members ...int) *Gateway {
	t.Helper()
	cfg.Name, cfg.Prefix, cfg.Upstream = name, prefix, f.upstream
	cfg.Endpoints = f.cluster.Endpoints()
	if len(members) > 0 {
		cfg.Endpoints = f.cluster.EndpointsOf(members...)
	}
	return StartGateway(t, cfg)
}

// credential is a programmatic user and its token.
type credential struct {
	userID, tokenID, secret string
}

// newToken makes a token secret and the record the store keeps of it.
func newToken(t testing.TB) (string, store.NewToken) {
	t.Helper()
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		t.Fatal(err)
	}
	return secret, store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
}

// createUser creates an account-level programmatic user with its first
// token through w.
func (f *fixture) createUser(t testing.TB, ctx context.Context, w *store.Store) (credential, error) {
	secret, nt := newToken(t)
	u, err := w.CreateUser(ctx, store.User{
		Org: f.org, Type: store.TypeProgrammatic, Level: store.LevelAccount,
		Account: f.account, Role: store.RoleViewer, Name: "bot",
	}, &nt, operator)
	if err != nil {
		return credential{}, err
	}
	return credential{userID: u.ID, tokenID: nt.Token.ID, secret: secret}, nil
}

// users creates n users through the fixture's writer.
func (f *fixture) users(t *testing.T, n int) []credential {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	out := make([]credential, n)
	for i := range out {
		c, err := f.createUser(t, ctx, f.writer)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// revoke revokes a credential's token, retrying while etcd is unavailable
// (a leader election); it returns when the revocation is acknowledged.
func (f *fixture) revoke(t *testing.T, c credential, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := f.writer.RevokeToken(ctx, f.org, c.userID, c.tokenID, operator)
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoking %s: %v", c.tokenID, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// admits checks that g admits c, tagged with c's identity.
func (f *fixture) admits(t *testing.T, g *Gateway, c credential) {
	t.Helper()
	r := g.Do(context.Background(), f.hc, "check", c.secret)
	if r.Status != http.StatusOK || r.TokenID != c.tokenID || r.UserID != c.userID {
		t.Fatalf("%s with %s: got %s, want 200 for %s", g.Name, c.tokenID, r, c.tokenID)
	}
}

// waitUntil sends requests with tok to g until done accepts a result or
// timeout passes; it returns the results it saw, the accepted one last,
// and whether one was accepted.
func (f *fixture) waitUntil(g *Gateway, tok string, timeout time.Duration, done func(Result) bool) ([]Result, bool) {
	deadline := time.Now().Add(timeout)
	var seen []Result
	for {
		r := g.Do(context.Background(), f.hc, "poll", tok)
		seen = append(seen, r)
		if done(r) {
			return seen, true
		}
		if time.Now().After(deadline) {
			return seen, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func refused(r Result) bool { return r.Status == http.StatusUnauthorized && r.Code == "invalid_token" }

func unavailable(r Result) bool {
	return r.Status == http.StatusServiceUnavailable && r.Code == "store_unavailable"
}

// percentile of durations, p in [0,100].
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
