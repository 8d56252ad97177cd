package webhook

import (
	"slices"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
)

// dormancies lists the user.dormant arrivals as "<user> <window> <last active>".
func dormancies(rcv *webhooktest.Receiver) []string {
	var out []string
	for _, a := range rcv.Arrivals() {
		if d := a.Payload.Data; a.Payload.Type == store.ActionUserDormant && d.LastActiveAt != nil {
			out = append(out, d.Target+" "+d.Window+" "+d.LastActiveAt.UTC().Format(time.RFC3339))
		}
	}
	return out
}

// TestUserDormant: with an injected clock, a user that made no request
// for its organization's dormant_after is reported once (user.dormant,
// delivered by webhook, with its last activity: its last token use, or its
// creation); again only after it was used and fell idle anew; a disabled
// user never; a restart repeats nothing.
func TestUserDormant(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	var clk clock
	t0 := time.Now().UTC().Truncate(time.Second)
	clk.set(t0)
	cfg := fast()
	cfg.Now = clk.Now
	cfg.DormantScanInterval = 50 * time.Millisecond
	e.hook(rcv, store.ActionUserDormant)
	days := "10d"
	if _, err := e.store.UpdateOrg(e.ctx(), e.org, store.OrgChange{DormantAfter: &days}, operator); err != nil {
		t.Fatal(err)
	}
	used, tok := e.userWithToken(t0.Add(365 * 24 * time.Hour))
	idle, _ := e.userWithToken(t0.Add(365 * 24 * time.Hour))
	off, _ := e.userWithToken(t0.Add(365 * 24 * time.Hour))
	if _, err := e.store.UpdateUser(e.ctx(), e.org, off.ID, func(u *store.User) error { u.Disabled = true; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	use := func(at time.Time) {
		if err := e.store.RecordUses(e.ctx(), []store.Use{{Org: e.org, User: used.ID, Token: tok.ID, At: at}}); err != nil {
			t.Fatal(err)
		}
	}
	use(t0.Add(time.Hour))
	scans := func(eng *Engine, n int64) {
		from := eng.DormantScans()
		webhooktest.WaitFor(t, "the engine looked for dormant users", 10*time.Second, func() bool { return eng.DormantScans() >= from+n })
	}

	a, _ := e.engine(cfg)
	scans(a, 3)
	if got := dormancies(rcv); len(got) != 0 {
		t.Fatalf("reported before dormant_after: %v", got)
	}
	clk.set(t0.Add(11*24*time.Hour + 2*time.Hour))
	webhooktest.WaitFor(t, "two users reported", 10*time.Second, func() bool { return len(dormancies(rcv)) == 2 })
	want := []string{
		idle.ID + " 10d " + idle.CreatedAt.UTC().Format(time.RFC3339),
		used.ID + " 10d " + t0.Add(time.Hour).Format(time.RFC3339),
	}
	got := dormancies(rcv)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}

	// Used again, then a restart: nothing new until it is idle anew.
	use(t0.Add(11*24*time.Hour + time.Hour))
	a.Close()
	b, _ := e.engine(cfg)
	webhooktest.WaitFor(t, "the new engine leads", 10*time.Second, b.Leading)
	scans(b, 3)
	if n := len(dormancies(rcv)); n != 2 {
		t.Fatalf("after use and a restart: %v", dormancies(rcv))
	}
	clk.set(t0.Add(22*24*time.Hour + 2*time.Hour))
	webhooktest.WaitFor(t, "the used user reported again", 10*time.Second, func() bool { return len(dormancies(rcv)) == 3 })
	scans(b, 3)
	got = dormancies(rcv)
	if len(got) != 3 || got[2] != used.ID+" 10d "+t0.Add(11*24*time.Hour+time.Hour).Format(time.RFC3339) {
		t.Fatalf("reports %v", got)
	}
}
