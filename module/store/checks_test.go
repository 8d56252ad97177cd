package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/tokengate/tokengate/module/token"
)

// TestUserCheckInTransaction: the caller's check of CreateUserChecked runs
// inside the transaction on the user as it will be stored; a refusal
// writes nothing, and the check cannot change what is written.
func TestUserCheckInTransaction(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	errRefused := errors.New("refused by the check")
	u := User{Org: f.org, Type: TypeProgrammatic, Level: LevelAccount, Account: f.act1, Role: RoleAdmin, Name: "heir",
		AllowedCIDRs: []string{"2001:0DB8::/32"}}
	before := countEvents(t, s, f.org)

	var seen []string
	_, nt := newToken(t, token.Programmatic)
	_, err := s.CreateUserChecked(ctx, u, &nt, func(u *User) error {
		seen = append(seen, u.AllowedCIDRs...)
		return errRefused
	}, operator)
	if !errors.Is(err, errRefused) {
		t.Fatalf("got %v, want the check's own error", err)
	}
	if !slices.Equal(seen, []string{"2001:db8::/32"}) {
		t.Fatalf("the check saw allowed_cidrs %q, want them as stored", seen)
	}
	if users, _, err := s.ListUsers(ctx, f.org, UserFilter{}, 100, ""); err != nil || len(users) != 0 {
		t.Fatalf("a refused creation left users %+v, %v", users, err)
	}
	if l, err := s.LookupToken(ctx, nt.Hash); err != nil || l.Found {
		t.Fatalf("a refused creation left its token: %+v, %v", l, err)
	}
	if n := countEvents(t, s, f.org) - before; n != 0 {
		t.Fatalf("a refused creation wrote %d audit events", n)
	}

	created, err := s.CreateUserChecked(ctx, u, nil, func(u *User) error {
		u.Role, u.AllowedCIDRs[0] = RoleViewer, "0.0.0.0/0"
		return nil
	}, operator)
	if err != nil || created.Role != RoleAdmin || !slices.Equal(created.AllowedCIDRs, []string{"2001:db8::/32"}) {
		t.Fatalf("created %+v, %v: the check changed what was written", created, err)
	}
}

// TestTokenCheckInTransaction: the caller's check of CreateTokenChecked
// judges the user as it is when the token is written, again after a
// concurrent change.
func TestTokenCheckInTransaction(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	errRefused := errors.New("refused by the check")
	u, _ := f.programmatic(t, func(u *User) { u.RateLimit = &RateLimit{Requests: 5, Window: "1m"} })
	limitedOnly := func(seen *[]bool) func(*User) error {
		return func(u *User) error {
			*seen = append(*seen, u.RateLimit != nil)
			if u.RateLimit == nil {
				return errRefused
			}
			return nil
		}
	}
	newTok := func() NewToken {
		_, nt := newToken(t, token.Programmatic)
		nt.Token.Org, nt.Token.User = f.org, u.ID
		return nt
	}

	var seen []bool
	if _, err := s.CreateTokenChecked(ctx, newTok(), nil, limitedOnly(&seen), operator); err != nil || !slices.Equal(seen, []bool{true}) {
		t.Fatalf("allowed: %v, the check saw %v", err, seen)
	}

	seen = nil
	before := countEvents(t, s, f.org)
	nt := newTok()
	check := func(v *User) error {
		if len(seen) == 0 {
			// Fault injection: another admin lifts the user's limit after
			// this transaction read it, before it commits.
			if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.RateLimit = nil; return nil }, operator); err != nil {
				t.Errorf("concurrent change: %v", err)
			}
		}
		return limitedOnly(&seen)(v)
	}
	if _, err := s.CreateTokenChecked(ctx, nt, nil, check, operator); !errors.Is(err, errRefused) {
		t.Fatalf("got %v, want the check's error on the changed user", err)
	}
	if !slices.Equal(seen, []bool{true, false}) {
		t.Fatalf("the check saw limits %v, want the user with, then without", seen)
	}
	if l, err := s.LookupToken(ctx, nt.Hash); err != nil || l.Found {
		t.Fatalf("a refused token was written: %+v, %v", l, err)
	}
	if n := countEvents(t, s, f.org) - before; n != 1 {
		t.Fatalf("%d audit events, want only the concurrent change's", n)
	}
}

// countEvents counts an organization's audit events.
func countEvents(t *testing.T, s *Store, org string) int {
	t.Helper()
	evs, _, err := s.ListEvents(ctxT(t), org, "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}
