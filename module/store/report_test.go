package store

import (
	"sync"
	"testing"

	"github.com/tokengate/tokengate/module/token"
)

// TestRevokeReported: the live tokens among the digests go, each with an
// audit event in its own organization naming the reporter and the reason;
// unknown and repeated digests change nothing.
func TestRevokeReported(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u1, live1 := f.programmatic(t, nil)
	_, live2 := f.programmatic(t, func(u *User) { u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act2} })
	_, kept := f.programmatic(t, nil)
	if _, err := s.CreateOrg(ctx, Org{ID: "globex", Name: "Globex"}, operator); err != nil {
		t.Fatal(err)
	}
	g := fixture{s: s, org: "globex"}
	act, err := s.CreateAccount(ctx, Account{Org: g.org, Name: "g"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	g.act1 = act.ID
	_, liveOther := g.programmatic(t, nil)
	unknown, _ := newToken(t, token.Programmatic)

	digests := []token.Hash{token.Sum(unknown), token.Sum(live1), token.Sum(liveOther), token.Sum(live2), token.Sum(live1)}
	for i := 0; i < 250; i++ { // more than one existence batch
		digests = append(digests, token.Hash{byte(i), 1})
	}
	revoked, err := s.RevokeReported(ctx, digests, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if len(revoked) != 3 {
		t.Fatalf("revoked %+v, want the 3 live tokens", revoked)
	}
	for _, secret := range []string{live1, live2, liveOther} {
		if l, err := s.LookupToken(ctx, token.Sum(secret)); err != nil || l.Found {
			t.Fatalf("reported token still found: %+v, %v", l, err)
		}
	}
	if l, err := s.LookupToken(ctx, token.Sum(kept)); err != nil || !l.Found {
		t.Fatalf("a token nobody reported: %+v, %v", l, err)
	}
	if toks, err := s.ListTokens(ctx, f.org, u1.ID); err != nil || len(toks) != 0 {
		t.Fatalf("the reported token is still listed: %+v, %v", toks, err)
	}

	for _, c := range []struct {
		org     string
		want    int
		account string
	}{{f.org, 2, ""}, {g.org, 1, g.act1}} {
		events, _, err := s.ListEvents(ctx, c.org, "", 100, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if e.Reason == "" {
				continue
			}
			n++
			if e.Action != ActionTokenRevoke || e.Actor != (Actor{ID: "192.0.2.7", Type: ActorReporter}) ||
				e.Reason != ReasonReported || !ValidTokenID(e.Target) {
				t.Errorf("event %+v", e)
			}
			if c.account != "" && e.Account != c.account {
				t.Errorf("event %+v: account, want %s", e, c.account)
			}
		}
		if n != c.want {
			t.Errorf("%s: %d reported-revocation events, want %d", c.org, n, c.want)
		}
	}

	// Reporting again changes nothing and writes no event.
	rev := s.LastCommit()
	if revoked, err := s.RevokeReported(ctx, digests, "192.0.2.7"); err != nil || len(revoked) != 0 {
		t.Fatalf("second report: %+v, %v", revoked, err)
	}
	if s.LastCommit() != rev {
		t.Fatal("a report of no live token committed a change")
	}
}

// TestRevokeReportedRace: two reports of one token race; it is revoked
// once, with one event.
func TestRevokeReportedRace(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	_, secret := f.programmatic(t, nil)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			revoked, err := s.RevokeReported(ctx, []token.Hash{token.Sum(secret)}, "192.0.2.8")
			if err != nil {
				t.Error(err)
			}
			counts[i] = len(revoked)
		}()
	}
	wg.Wait()
	if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 1 {
		t.Fatalf("revoked %d times", total)
	}
	events, _, err := s.ListEvents(ctx, f.org, "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Reason == ReasonReported {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}
