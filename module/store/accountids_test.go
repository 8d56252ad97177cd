package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// twoOrgs makes organizations acme and globex.
func twoOrgs(t *testing.T, s *Store) {
	t.Helper()
	for _, org := range []string{"acme", "globex"} {
		if _, err := s.CreateOrg(ctxT(t), Org{ID: org, Name: org}, operator); err != nil {
			t.Fatal(err)
		}
	}
}

// holders lists the organizations holding an account with the given id.
func holders(t *testing.T, s *Store, id string) []string {
	t.Helper()
	orgs, err := s.ListOrgs(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range orgs {
		if _, err := s.GetAccount(ctxT(t), o.ID, id); err == nil {
			out = append(out, o.ID)
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	return out
}

// TestAccountIDsUniqueAcrossOrgs: an organization cannot take an account id
// another organization holds (upstreams key on X-Tokengate-Account-Id
// alone), nor one another organization held and deleted (the upstream's
// data of that account would become the new holder's); the organization
// that deleted an id may create it again.
func TestAccountIDsUniqueAcrossOrgs(t *testing.T) {
	s, _ := newStore(t)
	twoOrgs(t, s)
	ctx := ctxT(t)
	const id = "act-0badc0de"
	if _, err := s.CreateAccount(ctx, Account{Org: "globex", ID: id, Name: "globex prod"}, operator); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateAccount(ctx, Account{Org: "acme", ID: id, Name: "mine now"}, operator)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("acme took globex's account id: %v", err)
	}
	if got := holders(t, s, id); len(got) != 1 || got[0] != "globex" {
		t.Fatalf("%s is held by %v", id, got)
	}

	if err := s.DeleteAccount(ctx, "globex", id, operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: "acme", ID: id, Name: "mine now"}, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("acme took the id globex deleted: %v", err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: "globex", ID: id, Name: "again"}, operator); err != nil {
		t.Fatalf("globex creating its deleted id again: %v", err)
	}
	if got := holders(t, s, id); len(got) != 1 || got[0] != "globex" {
		t.Fatalf("%s is held by %v", id, got)
	}
}

// TestAccountIDsUniqueUnderConcurrency: organizations creating the same
// account id at once: exactly one wins, the others get a conflict.
func TestAccountIDsUniqueUnderConcurrency(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	const n = 12
	for i := range n {
		if _, err := s.CreateOrg(ctx, Org{ID: fmt.Sprintf("org%d", i), Name: "o"}, operator); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		id := fmt.Sprintf("act-0000000%d", round)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.CreateAccount(ctx, Account{Org: fmt.Sprintf("org%d", i), ID: id, Name: "race"}, operator)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("org%d: %v, want success or a conflict", i, err)
			}
		}
		if got := holders(t, s, id); won != 1 || len(got) != 1 {
			t.Fatalf("round %d: %d creations succeeded, %s held by %v", round, won, id, got)
		}
	}
}

// TestAccountIDsOfAnOlderStore: accounts written before the index existed
// are indexed on first use, so their ids are taken too; an id two
// organizations already share stays with the one that created it first.
func TestAccountIDsOfAnOlderStore(t *testing.T) {
	s, srv := newStore(t)
	twoOrgs(t, s)
	ctx := ctxT(t)
	if _, err := s.CreateOrg(ctx, Org{ID: "initech", Name: "initech"}, operator); err != nil {
		t.Fatal(err)
	}
	// Written as a store of an earlier version did: the account's key alone.
	legacy := func(org, id string) {
		t.Helper()
		v := fmt.Sprintf(`{"id":%q,"org":%q,"name":"old","created_at":"2024-01-01T00:00:00Z","created_by":{"id":"operator","type":"operator"}}`, id, org)
		if _, err := s.Client().Put(ctx, "/tg/accounts/"+org+"/"+id, v); err != nil {
			t.Fatal(err)
		}
	}
	legacy("globex", "act-0000aaaa")
	legacy("globex", "act-0000bbbb")
	legacy("acme", "act-0000bbbb") // already shared, globex first
	legacy("initech", "act-0000ffff")

	fresh := New(srv.Client(), "/tg")
	// Deleted before anything built the index: the id stays initech's.
	if err := fresh.DeleteAccount(ctx, "initech", "act-0000ffff", operator); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ org, id string }{
		{"acme", "act-0000aaaa"},
		{"initech", "act-0000bbbb"},
		{"acme", "act-0000ffff"},
	} {
		if _, err := fresh.CreateAccount(ctx, Account{Org: tt.org, ID: tt.id, Name: "x"}, operator); !errors.Is(err, ErrConflict) {
			t.Fatalf("%s took %s: %v", tt.org, tt.id, err)
		}
	}
	// The index binds the shared id to globex, which created it first.
	if err := fresh.DeleteAccount(ctx, "acme", "act-0000bbbb", operator); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.CreateAccount(ctx, Account{Org: "acme", ID: "act-0000bbbb", Name: "x"}, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("acme took act-0000bbbb back: %v", err)
	}
	if _, err := fresh.CreateAccount(ctx, Account{Org: "acme", ID: "act-0000cccc", Name: "x"}, operator); err != nil {
		t.Fatal(err)
	}
	// The index was written once: a store opened later finds it complete.
	resp, err := s.Client().Get(ctx, "/tg/accountids/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 4 {
		t.Fatalf("index entries: %d, %v", resp.Count, err)
	}
	legacy("initech", "act-0000dddd") // written past the index, after it was built
	if _, err := New(srv.Client(), "/tg").CreateAccount(ctx, Account{Org: "acme", ID: "act-0000eeee", Name: "x"}, operator); err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Client().Get(ctx, "/tg/accountids/act-0000dddd"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the index was built again: %v, %v", resp, err)
	}
}
