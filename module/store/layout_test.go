package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// TestVerdictRangeCarriesNoRequestPathWrites: a watch on VerdictRange, as
// the identity cache runs it, hears nothing of last-use times or
// rate-limit budgets, and hears every change that decides a verdict.
func TestVerdictRangeCarriesNoRequestPathWrites(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	u, _ := f.programmatic(t, nil)
	ctx := ctxT(t)
	toks, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}

	start, end := s.VerdictRange()
	for _, key := range []string{s.orgKey(f.org), s.accountKey(f.org, f.act1), s.policyKey(f.org, f.polOrg),
		s.userKey(f.org, u.ID), s.tokenKeyHex(toks[0].Hash), s.userTokenKey(f.org, u.ID, toks[0].ID)} {
		if key < start || key >= end {
			t.Errorf("verdict key %s lies outside [%s, %s)", key, start, end)
		}
	}
	for _, key := range []string{s.lastUsedKey(f.org, u.ID, toks[0].ID), s.RateLimitPrefix() + "gw/x",
		s.WebhooksPrefix() + f.org + "/wh-1", s.deliveriesPrefix(f.org, "wh-1") + "1"} {
		if key >= start && key < end {
			t.Errorf("key %s, written outside admin changes, lies inside [%s, %s)", key, start, end)
		}
	}

	resp, err := s.Client().Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	wch := s.Client().Watch(ctx, start, clientv3.WithRange(end), clientv3.WithRev(resp.Header.Revision+1))
	if err := s.RecordUses(ctx, []Use{{Org: f.org, User: u.ID, Token: toks[0].ID, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Put(ctx, s.RateLimitPrefix()+"demand/x", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Disabled = true; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	wr := <-wch
	if err := wr.Err(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range wr.Events {
		key := string(ev.Kv.Key)
		// The user's change, the copy of it under its token's digest, and
		// the audit event.
		if key != s.userKey(f.org, u.ID) && key != s.tokenKeyHex(toks[0].Hash) && !strings.HasPrefix(key, s.auditPrefix(f.org)) {
			t.Errorf("the watch carried %s", key)
		}
	}
	if len(wr.Events) == 0 || string(wr.Events[0].Kv.Key) != s.userKey(f.org, u.ID) && string(wr.Events[len(wr.Events)-1].Kv.Key) != s.userKey(f.org, u.ID) {
		t.Errorf("the user's change did not come first: %d events", len(wr.Events))
	}
}

// TestSchemaMigrationFromVersion1: a store of schema 1 (last-use times
// under /lastused/) is brought to version 2 by gateways starting
// together: every time moves, none is lost, and listings read them. The
// move to 3 waits for Upgrade.
func TestSchemaMigrationFromVersion1(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	// 120 tokens over 3 users, each used once, then laid out as schema 1
	// kept them.
	var uses []Use
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 3 {
		u, _ := f.programmatic(t, nil)
		for i := range 40 {
			var tokID string
			if i == 0 {
				toks, err := s.ListTokens(ctx, f.org, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				tokID = toks[0].ID
			} else {
				_, nt := newToken(t, token.Programmatic)
				nt.Token.Org, nt.Token.User = f.org, u.ID
				tok, err := s.CreateToken(ctx, nt, nil, operator)
				if err != nil {
					t.Fatal(err)
				}
				tokID = tok.ID
			}
			uses = append(uses, Use{Org: f.org, User: u.ID, Token: tokID, At: at.Add(time.Duration(len(uses)) * time.Second)})
		}
	}
	if err := s.RecordUses(ctx, uses); err != nil {
		t.Fatal(err)
	}
	moved, err := s.Client().Get(ctx, s.lastUsedRoot(), clientv3.WithPrefix())
	if err != nil || len(moved.Kvs) != len(uses) {
		t.Fatalf("%d last-use keys, want %d (%v)", len(moved.Kvs), len(uses), err)
	}
	for _, kv := range moved.Kvs {
		old := s.legacyLastUsedPrefix() + strings.TrimPrefix(string(kv.Key), s.lastUsedRoot())
		if _, err := s.Client().Txn(ctx).Then(clientv3.OpDelete(string(kv.Key)), clientv3.OpPut(old, string(kv.Value))).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	v1, _ := json.Marshal(Schema{Version: 1, WrittenBy: "tokengate v0.1.0"})
	if _, err := s.Client().Put(ctx, s.schemaKey(), string(v1)); err != nil {
		t.Fatal(err)
	}
	// Even before the migration, listings read schema 1's times.
	toks, err := s.ListTokens(ctx, f.org, uses[0].User)
	if err != nil || len(toks) != 40 || toks[0].LastUsedAt == nil {
		t.Fatalf("before the migration: %d tokens, %v", len(toks), err)
	}

	var wg sync.WaitGroup
	checks := make([]SchemaCheck, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { checks[i], errs[i] = s.CheckSchema(ctx, fmt.Sprint("gateway ", i)) })
	}
	wg.Wait()
	migrators := 0
	for i := range 3 {
		if errs[i] != nil || checks[i].Version != startVersion || !checks[i].UpgradePending {
			t.Fatalf("gateway %d: %+v %v", i, checks[i], errs[i])
		}
		if checks[i].MigratedFrom == 1 {
			migrators++
		}
	}
	if migrators == 0 {
		t.Error("no gateway says it migrated the store")
	}
	left, err := s.Client().Get(ctx, s.legacyLastUsedPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || left.Count != 0 {
		t.Fatalf("%d schema-1 last-use keys left (%v)", left.Count, err)
	}
	for _, use := range uses {
		kv, err := s.Client().Get(ctx, s.lastUsedKey(use.Org, use.User, use.Token))
		if err != nil || len(kv.Kvs) != 1 || string(kv.Kvs[0].Value) != use.At.Format(time.RFC3339Nano) {
			t.Fatalf("token %s: last use %v, want %s (%v)", use.Token, kv.Kvs, use.At, err)
		}
	}
	// Once more: nothing to do.
	again, err := s.CheckSchema(ctx, "gateway 4")
	if err != nil || again.MigratedFrom != 0 || again.Version != startVersion || s.CopiesTrusted() {
		t.Fatalf("checked again: %+v %v", again, err)
	}
}

// TestDirectoryLoadsInPages: a directory loaded page by page holds every
// account and policy as of the revision asked, and nothing written after.
func TestDirectoryLoadsInPages(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	old := directoryPage
	directoryPage = 3
	t.Cleanup(func() { directoryPage = old })
	for range 8 {
		if _, err := s.CreateAccount(ctx, Account{Org: f.org, Name: "more"}, operator); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.Client().Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	late, err := s.CreateAccount(ctx, Account{Org: f.org, Name: "late"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	d := s.NewDirectory()
	if err := d.Load(ctx, rev); err != nil {
		t.Fatal(err)
	}
	accounts, _ := s.ListAccounts(ctx, f.org)
	if len(d.accounts) != len(accounts)-1 || len(d.policies) != 2 {
		t.Fatalf("directory holds %d accounts and %d policies, want %d and 2", len(d.accounts), len(d.policies), len(accounts)-1)
	}
	if _, ok := d.accounts[s.accountKey(f.org, late.ID)]; ok {
		t.Fatal("the directory holds an account written after its revision")
	}
	if p := d.policies[s.policyKey(f.org, f.polAct)]; p == nil || p.Name != "act1 read" {
		t.Fatalf("policy %+v", p)
	}
}

// TestLookupInALaggingDirectory: an account or policy the directory does
// not hold yet (written after the revision it reached) is read at the
// lookup's revision, so a user made with a new account reaches it at once.
func TestLookupInALaggingDirectory(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	resp, err := s.Client().Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	d := s.NewDirectory()
	if err := d.Load(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.CreateAccount(ctx, Account{Org: f.org, Name: "fresh"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	_, secret := f.programmatic(t, func(u *User) {
		u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, fresh.ID}
	})
	before := s.Stats().RangeRPCs
	l, err := s.LookupTokenIn(ctx, token.Sum(secret), d)
	if err != nil || !l.Found {
		t.Fatalf("%+v %v", l, err)
	}
	if !slices.Equal(l.Accounts, []string{f.act1, fresh.ID}) {
		t.Fatalf("accounts %v, want both", l.Accounts)
	}
	if !l.FromDirectory || !slices.Equal(l.DirectoryKeys, []string{s.accountKey(f.org, f.act1)}) ||
		!slices.Contains(l.Keys, s.accountKey(f.org, fresh.ID)) {
		t.Fatalf("directory keys %v, keys %v", l.DirectoryKeys, l.Keys)
	}
	if n := s.Stats().RangeRPCs - before; n != 3 {
		t.Fatalf("%d etcd requests, want 3 (one more for what the directory lacks)", n)
	}
}

// TestDirectoryReloadKeepsChangesMadeMeanwhile: a directory reloaded while
// the watch runs reads at one revision and applies on top of it the changes
// delivered meanwhile that came after that revision, not those before.
func TestDirectoryReloadKeepsChangesMadeMeanwhile(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	old := directoryPage
	directoryPage = 1
	t.Cleanup(func() { directoryPage = old; afterPage = nil })

	d := s.NewDirectory()
	event := func(typ mvccpb.Event_EventType, key string, rev int64) *clientv3.Event {
		return &clientv3.Event{Type: typ, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
	}
	rev := func() int64 {
		resp, err := s.Client().Get(ctx, "/", clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	// act2 was created before the reload: its creation, delivered late,
	// is older than what the reload reads and must not undo its deletion.
	created := rev()
	var late *Account
	afterPage = func() {
		afterPage = nil // once, after the first page
		if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
			t.Fatal(err)
		}
		deleted := rev()
		var err error
		if late, err = s.CreateAccount(ctx, Account{Org: f.org, Name: "late"}, operator); err != nil {
			t.Fatal(err)
		}
		d.Apply(event(mvccpb.PUT, s.accountKey(f.org, f.act2), created))
		d.Apply(event(mvccpb.DELETE, s.accountKey(f.org, f.act2), deleted))
		d.Apply(event(mvccpb.PUT, s.accountKey(f.org, late.ID), rev()))
		d.Apply(event(mvccpb.PUT, s.prefix+"/users/acme/u-0123456789ab", rev())) // not the directory's
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !d.Ready() {
		t.Fatal("not ready after a reload")
	}
	if _, ok := d.accounts[s.accountKey(f.org, f.act2)]; ok {
		t.Error("an account deleted during the reload is held")
	}
	if _, ok := d.accounts[s.accountKey(f.org, late.ID)]; !ok {
		t.Error("an account created during the reload is missing")
	}
	if _, ok := d.accounts[s.accountKey(f.org, f.act1)]; !ok {
		t.Error("an account untouched is missing")
	}
	if len(d.policies) != 2 {
		t.Errorf("%d policies, want 2", len(d.policies))
	}
	// A reload of a ready directory does nothing.
	if err := d.Reload(ctx); err != nil || !d.Ready() {
		t.Fatal(err)
	}
}
