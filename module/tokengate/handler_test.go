package tokengate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/reading"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
	"github.com/tokengate/tokengate/module/verify"
)

func TestHasIdentityPrefix(t *testing.T) {
	const p = "X-Tokengate-"
	for name, want := range map[string]bool{
		"X-Tokengate-User-Id": true,
		"x-tokengate-role":    true,
		"X_TOKENGATE_ORG":     true,
		"X-Tokengate-":        true,
		"X-Tokengate":         false,
		"X-Token-Gate-User":   false,
		"X-Auth-Token":        false,
	} {
		if got := reading.HeaderHasPrefix(name, p); got != want {
			t.Errorf("HeaderHasPrefix(%q) = %v", name, got)
		}
	}
}

func TestHandlerValidate(t *testing.T) {
	for _, h := range []Handler{
		{},
		{Mode: "gateway"},
		{Mode: "ui", Scope: "account"},
		{Mode: "ui", Types: []string{"ui"}},
		{Mode: "api", Scope: "tenant"},
		{Mode: "api", Scope: "organization", Account: "{query.a}"},
		{Mode: "api", Types: []string{"robot"}},
	} {
		if err := h.settle(); err == nil {
			t.Errorf("%+v accepted", h)
		}
	}
	h := Handler{Mode: "api", Types: []string{"ui"}}
	if err := h.settle(); err != nil || h.Scope != ScopeAccount || h.admits("programmatic") || !h.admits("ui") {
		t.Fatalf("defaults: %+v, %v", h, err)
	}
}

// benchHandler is a handler on a real verifier holding one cached token.
func benchHandler(b *testing.B) (*Handler, string) {
	b.Helper()
	return testHandler(b, nil)
}

// testHandler is benchHandler with the token's user changed by mutate.
func testHandler(b testing.TB, mutate func(u *store.User)) (*Handler, string) {
	b.Helper()
	srv := etcdtest.Start(b)
	st := store.New(srv.Client(), "/tg")
	ctx := context.Background()
	op := store.Actor{ID: "op", Type: store.ActorOperator}
	if _, err := st.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, op); err != nil {
		b.Fatal(err)
	}
	a, err := st.CreateAccount(ctx, store.Account{Org: "acme", Name: "a"}, op)
	if err != nil {
		b.Fatal(err)
	}
	secret, _ := token.Generate(token.Programmatic)
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID()}}
	u := store.User{Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount, Account: a.ID, Role: store.RoleViewer, Name: "bot"}
	if mutate != nil {
		mutate(&u)
	}
	if _, err := st.CreateUser(ctx, u, &nt, op); err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(st, verify.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	if _, err := v.Verify(ctx, secret); err != nil {
		b.Fatal(err)
	}
	h := &Handler{Mode: ModeAPI, logger: zap.NewNop()}
	if err := h.settle(); err != nil {
		b.Fatal(err)
	}
	h.use(fixedVerifier{v}, DefaultHeaderPrefix)
	return h, secret
}

// benchRequest runs f on a request carrying what Caddy gives every request
// (a replacer, a place for extra log fields), made fresh each time.
func benchRequest(b *testing.B, secret string, f func(w http.ResponseWriter, r *http.Request)) {
	req := httptest.NewRequest("GET", "/api/clusters", nil)
	auth := []string{"Bearer " + secret}
	w := httptest.NewRecorder()
	base := req.Context()
	b.ReportAllocs()
	for b.Loop() {
		ctx := context.WithValue(base, caddy.ReplacerCtxKey, caddy.NewReplacer())
		ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
		r := req.WithContext(ctx)
		r.Header = http.Header{"Authorization": auth}
		f(w, r)
	}
}

// BenchmarkHandlerBaseline is the per-request setup alone, to subtract.
func BenchmarkHandlerBaseline(b *testing.B) {
	_, secret := benchHandler(b)
	benchRequest(b, secret, func(w http.ResponseWriter, r *http.Request) {})
}

// BenchmarkHandlerCached is the handler's whole path for a cached token:
// strip, parse, verify, account, role, tag.
func BenchmarkHandlerCached(b *testing.B) {
	h, secret := benchHandler(b)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	benchRequest(b, secret, func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if r.Header.Get("X-Tokengate-User-Type") != "programmatic" {
			b.Fatalf("not tagged: %v", r.Header)
		}
	})
}
