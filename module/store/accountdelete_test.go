package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// manyUsers is more organization-level users listing one account than one
// etcd transaction may write: etcd's --max-txn-ops defaults to 128.
const manyUsers = 300

// TestAccountDeleteManyUsers: an account listed by any number of
// organization-level users can be deleted. Access ends with the account's
// key, at the first revision of the deletion; the users lose it after,
// without losing a change another admin makes to them meanwhile.
func TestAccountDeleteManyUsers(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	users := make([]*User, manyUsers)
	var secret string
	for i := range users {
		users[i], secret = f.programmatic(t, func(u *User) {
			u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, f.act2}
		})
	}
	if l, err := s.LookupToken(ctx, token.Sum(secret)); err != nil || !slices.Equal(l.Accounts, []string{f.act1, f.act2}) {
		t.Fatalf("before: %+v, %v", l, err)
	}

	events := s.Client().Watch(ctx, "/tg/", clientv3.WithPrefix())
	// Other admins change every tenth user while the account goes.
	var wg sync.WaitGroup
	for i := 0; i < manyUsers; i += 10 {
		wg.Go(func() {
			_, err := s.UpdateUser(ctx, f.org, users[i].ID, func(u *User) error {
				u.Description = fmt.Sprintf("changed %d", i)
				return nil
			}, operator)
			if err != nil {
				t.Errorf("concurrent change of user %d: %v", i, err)
			}
		})
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	wg.Wait()

	if l, err := s.LookupToken(ctx, token.Sum(secret)); err != nil || !slices.Equal(l.Accounts, []string{f.act1}) {
		t.Fatalf("after: %+v, %v", l, err)
	}
	for i, u := range users {
		got, err := s.GetUser(ctx, f.org, u.ID)
		if err != nil || !slices.Equal(got.Accounts, []string{f.act1}) {
			t.Fatalf("user %d after the deletion: %+v, %v", i, got, err)
		}
		if want := fmt.Sprintf("changed %d", i); i%10 == 0 && got.Description != want {
			t.Fatalf("user %d lost a concurrent change: description %q", i, got.Description)
		}
	}
	// The account's key went before any user was rewritten for it.
	deleted, firstUserPut := int64(0), int64(0)
	for deleted == 0 {
		resp := <-events
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case ev.Type == clientv3.EventTypeDelete && key == "/tg/accounts/"+f.org+"/"+f.act2:
				deleted = ev.Kv.ModRevision
			case ev.Type == clientv3.EventTypePut && firstUserPut == 0 && strings.HasPrefix(key, "/tg/users/"+f.org+"/"):
				var u User
				if json.Unmarshal(ev.Kv.Value, &u) == nil && !slices.Contains(u.Accounts, f.act2) {
					firstUserPut = ev.Kv.ModRevision
				}
			}
		}
	}
	if firstUserPut != 0 && firstUserPut < deleted {
		t.Fatalf("a user lost the account at revision %d, before its key went at %d", firstUserPut, deleted)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestAccountDeleteCutShort: users still listing a deleted account (a
// deletion cut short by an outage) reach nothing through it, lose it on
// their next change, hold back the id's creation in the organization, and
// lose it when the deletion is asked again.
func TestAccountDeleteCutShort(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	stale := func() *User {
		t.Helper()
		u, _ := f.programmatic(t, func(u *User) { u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1} })
		// As a deletion cut short leaves it: the account gone, the user
		// still listing it.
		u.Accounts = []string{f.act1, f.act2}
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client().Put(ctx, "/tg/users/"+f.org+"/"+u.ID, string(b)); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatal(err)
	}
	secret, nt := newToken(t, token.Programmatic)
	u := stale()
	nt.Token.Org, nt.Token.User = f.org, u.ID
	if _, err := s.CreateToken(ctx, nt, nil, operator); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LookupToken(ctx, token.Sum(secret)); err != nil || !slices.Equal(l.Accounts, []string{f.act1}) {
		t.Fatalf("a user listing a deleted account reaches %v, %v", l.Accounts, err)
	}
	changed, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Description = "changed"; return nil }, operator)
	if err != nil || !slices.Equal(changed.Accounts, []string{f.act1}) {
		t.Fatalf("a change of a user listing a deleted account: %+v, %v", changed, err)
	}

	other := stale()
	if _, err := s.CreateAccount(ctx, Account{Org: f.org, ID: f.act2, Name: "again"}, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("created again while users list it: %v", err)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatalf("finishing the deletion: %v", err)
	}
	if got, err := s.GetUser(ctx, f.org, other.ID); err != nil || !slices.Equal(got.Accounts, []string{f.act1}) {
		t.Fatalf("after finishing the deletion: %+v, %v", got, err)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("once finished: %v", err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: f.org, ID: f.act2, Name: "again"}, operator); err != nil {
		t.Fatalf("created again: %v", err)
	}
}
