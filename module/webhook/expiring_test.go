package webhook

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

func TestWarningFor(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		before time.Duration // now = at - before
		window string
		wider  []string
	}{
		{8 * day, "", nil},
		{7*day + time.Second, "", nil},
		{7 * day, "7d", nil},
		{3 * day, "7d", nil},
		{day + time.Second, "7d", nil},
		{day, "1d", []string{"7d"}},
		{time.Hour, "1d", []string{"7d"}},
		{0, "", nil},
		{-time.Hour, "", nil},
	}
	for _, tt := range tests {
		w, wider, ok := warningFor(at.Add(-tt.before), at)
		if w != tt.window || ok != (tt.window != "") || !slices.Equal(wider, tt.wider) {
			t.Errorf("%s before expiry: %q %v %v, want %q %v", tt.before, w, wider, ok, tt.window, tt.wider)
		}
	}
}

// clock is a settable clock.
type clock struct{ now atomic.Int64 }

func (c *clock) set(t time.Time) { c.now.Store(t.UnixNano()) }
func (c *clock) Now() time.Time  { return time.Unix(0, c.now.Load()) }

// userWithToken creates a user whose first token expires at expires.
func (e *env) userWithToken(expires time.Time) (*store.User, *store.Token) {
	e.t.Helper()
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		e.t.Fatal(err)
	}
	acts := e.accounts(1)
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret), ExpiresAt: &expires}}
	u, err := e.store.CreateUser(e.ctx(), store.User{Org: e.org, Type: store.TypeProgrammatic, Level: store.LevelAccount,
		Account: acts[0], Role: store.RoleViewer, Name: "bot"}, &nt, operator)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, &nt.Token
}

// scanned waits until eng has completed n more scans than it had.
func scanned(t *testing.T, eng *Engine, n int64) {
	t.Helper()
	from := eng.Scans()
	webhooktest.WaitFor(t, "the engine scanned", 10*time.Second, func() bool { return eng.Scans() >= from+n })
}

// warnings lists the token.expiring arrivals as "<token> <window>".
func warnings(rcv *webhooktest.Receiver) []string {
	var out []string
	for _, a := range rcv.Arrivals() {
		if a.Payload.Type == store.ActionTokenExpiring {
			out = append(out, a.Payload.Data.Target+" "+a.Payload.Data.Window)
		}
	}
	return out
}

// TestTokenExpiring: with an injected clock, token.expiring goes out 7
// days and 1 day before expiry, once each, not again after a restart or a
// failover; a token with less than a day left gets only the 1-day warning;
// a token replaced in a rotation gets none.
func TestTokenExpiring(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	var clk clock
	t0 := time.Now()
	clk.set(t0)
	cfg := fast()
	cfg.Now = clk.Now
	e.hook(rcv, store.ActionTokenExpiring)
	u, tok := e.userWithToken(t0.Add(10 * 24 * time.Hour).Truncate(time.Second))
	_, short := e.userWithToken(t0.Add(12 * time.Hour).Truncate(time.Second))
	// A rotation with an hour's overlap: the old token is on its way out.
	_, rotated := e.userWithToken(t0.Add(30 * 24 * time.Hour))
	nt := store.NewToken{Hash: token.Sum("tgp_rotation"), Token: store.Token{ID: store.NewTokenID(), Org: e.org, User: rotated.User}}
	if _, err := e.store.CreateToken(e.ctx(), nt, &store.Rotation{Replaces: rotated.ID, Overlap: time.Hour}, operator); err != nil {
		t.Fatal(err)
	}

	a, _ := e.engine(cfg)
	webhooktest.WaitFor(t, "the short token's warning", 10*time.Second, func() bool { return len(warnings(rcv)) == 1 })
	scanned(t, a, 2)
	if got := warnings(rcv); !slices.Equal(got, []string{short.ID + " 1d"}) {
		t.Fatalf("warnings at start: %v", got)
	}

	clk.set(t0.Add(3*24*time.Hour + time.Minute)) // inside 7 days of expiry
	webhooktest.WaitFor(t, "the 7-day warning", 10*time.Second, func() bool { return len(warnings(rcv)) == 2 })
	got := rcv.Arrivals()
	last := got[len(got)-1].Payload.Data
	if last.Target != tok.ID || last.Window != "7d" || last.User != u.ID || last.Account != u.Account ||
		last.ExpiresAt == nil || !last.ExpiresAt.Equal(*tok.ExpiresAt) || last.Actor.Type != store.ActorSystem {
		t.Fatalf("the 7-day warning: %+v", last)
	}
	scanned(t, a, 3)

	// A restart: the new engine scans and repeats nothing.
	a.Close()
	b, _ := e.engine(cfg)
	webhooktest.WaitFor(t, "the new engine leads", 10*time.Second, b.Leading)
	scanned(t, b, 3)
	if n := len(warnings(rcv)); n != 2 {
		t.Fatalf("after a restart: %v", warnings(rcv))
	}

	// A failover: b dies, c takes over, scans, repeats nothing; then the
	// 1-day warning, once.
	c, _ := e.engine(cfg)
	b.store.Client().Close() // a crash: the lease expires

	webhooktest.WaitFor(t, "c leads", 15*time.Second, c.Leading)
	scanned(t, c, 3)
	if n := len(warnings(rcv)); n != 2 {
		t.Fatalf("after a failover: %v", warnings(rcv))
	}
	clk.set(t0.Add(9*24*time.Hour + time.Minute))
	webhooktest.WaitFor(t, "the 1-day warning", 10*time.Second, func() bool { return len(warnings(rcv)) == 3 })
	scanned(t, c, 3)
	want := []string{short.ID + " 1d", tok.ID + " 7d", tok.ID + " 1d"}
	if got := warnings(rcv); !slices.Equal(got, want) {
		t.Fatalf("warnings %v, want %v", got, want)
	}
	// Past expiry: nothing more.
	clk.set(t0.Add(11 * 24 * time.Hour))
	scanned(t, c, 3)
	if got := warnings(rcv); !slices.Equal(got, want) {
		t.Fatalf("warnings past expiry %v, want %v", got, want)
	}
}
