package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/token"
)

// TestRecentlyUsedAndLookupUsed: the tokens used since a time, newest
// first and bounded, are read usedBatch to an etcd request, each lookup the
// one LookupTokenIn gives; a token revoked meanwhile is left out.
func TestRecentlyUsedAndLookupUsed(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var uses []Use
	secrets := map[string]string{}
	const n = 130
	for i := range n {
		mutate := func(u *User) {}
		if i%2 == 1 {
			mutate = func(u *User) { u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, f.act2} }
		}
		u, secret := f.programmatic(t, mutate)
		toks, err := s.ListTokens(ctx, f.org, u.ID)
		if err != nil || len(toks) != 1 {
			t.Fatal(toks, err)
		}
		secrets[toks[0].ID] = secret
		uses = append(uses, Use{Org: f.org, User: u.ID, Token: toks[0].ID, At: now.Add(-time.Duration(i) * time.Second)})
	}
	if err := s.RecordUses(ctx, uses); err != nil {
		t.Fatal(err)
	}

	recent, err := s.RecentlyUsed(ctx, now.Add(-(n-11)*time.Second), 100, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 100 || recent[0].Token != uses[0].Token || recent[99].Token != uses[99].Token {
		t.Fatalf("%d recent uses, first %+v", len(recent), recent[0])
	}
	if few, _ := s.RecentlyUsed(ctx, now.Add(-4*time.Second), 100, 1000); len(few) != 5 {
		t.Fatalf("%d used within 4s, want 5", len(few))
	}

	revoked := recent[7]
	if err := s.RevokeToken(ctx, f.org, revoked.User, revoked.Token, operator); err != nil {
		t.Fatal(err)
	}
	d := s.NewDirectory()
	if err := d.Load(ctx, 0); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().RangeRPCs
	seen := 0
	err = s.LookupUsed(ctx, recent, d, func(i int, h token.Hash, l *Lookup) {
		seen++
		if recent[i].Token == revoked.Token {
			t.Errorf("revoked token %s looked up", revoked.Token)
		}
		if h != token.Sum(secrets[recent[i].Token]) {
			t.Fatalf("%d: digest of another token", i)
		}
		want, err := s.LookupTokenIn(ctx, h, d)
		if err != nil {
			t.Fatal(err)
		}
		want.Revision, l.Revision = 0, 0
		if !reflect.DeepEqual(l, want) {
			t.Errorf("%d: lookup\n%+v\nwant\n%+v", i, l, want)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 99 {
		t.Errorf("%d tokens looked up, want 99", seen)
	}
	// 100 tokens: two batches of records and users, and 99 LookupTokenIn
	// of two requests each.
	if got := s.Stats().RangeRPCs - before; got != 2+99*2 {
		t.Errorf("%d etcd requests, want %d", got, 2+99*2)
	}
}

// TestRecordManyUses: recording more uses than one request's deadline
// allows for all of them succeeds, each request within its own.
func TestRecordManyUses(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	u, _ := f.programmatic(t, nil)
	old := defaultTimeout
	defaultTimeout = 200 * time.Millisecond
	t.Cleanup(func() { defaultTimeout = old })
	uses := make([]Use, 400*usageBatch)
	for i := range uses {
		uses[i] = Use{Org: f.org, User: u.ID, Token: NewTokenID(), At: time.Now()}
	}
	began, before := time.Now(), s.Stats().UsageWrites
	if err := s.RecordUses(t.Context(), uses); err != nil {
		t.Fatalf("after %s: %v", time.Since(began), err)
	}
	if n := s.Stats().UsageWrites - before; n != 400 {
		t.Fatalf("%d requests, want 400", n)
	}
	t.Logf("400 requests in %s", time.Since(began))
}

// TestRotatedTokenKeepsItsName: a token made to replace another takes its
// name unless it is given one.
func TestRotatedTokenKeepsItsName(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil) // its first token is named "t"
	toks, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ given, want string }{{"", "t"}, {"laptop", "laptop"}} {
		_, nt := newToken(t, token.Programmatic)
		nt.Token.Org, nt.Token.User, nt.Token.Name = f.org, u.ID, tc.given
		got, err := s.CreateToken(ctx, nt, &Rotation{Replaces: toks[0].ID, Overlap: time.Hour}, operator)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != tc.want {
			t.Errorf("rotated with name %q: named %q, want %q", tc.given, got.Name, tc.want)
		}
		toks = []Token{*got}
	}
}
