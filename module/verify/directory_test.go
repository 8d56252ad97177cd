package verify

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// TestColdLookupReadsTokenAndUserOnly: on a store before schema 3, with
// the directory of accounts and policies loaded, a cold lookup of an
// organization-level policy user costs two etcd requests (the token's reference; its record and user),
// and its identity is the one a full read at one revision gives.
func TestColdLookupReadsTokenAndUserOnly(t *testing.T) {
	e := newEnv(t, Config{})
	for _, mutate := range []func(u *store.User){
		func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} },
		func(u *store.User) {
			u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
		},
	} {
		coldLookup(t, e, mutate, 2)
	}
}

// TestColdLookupReadsOneKeyAtSchema3: on a store at schema 3 a cold lookup
// reads the key under the token's digest alone, and finds what reading
// the record and the user finds; the store moved back to schema 2 makes
// every verdict read from a copy news, and lookups read records again.
func TestColdLookupReadsOneKeyAtSchema3(t *testing.T) {
	e := newEnv(t, Config{})
	if check, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil || check.Version != store.SchemaVersion {
		t.Fatalf("schema: %+v %v", check, err)
	}
	e.synced()
	e.trustsCopies()
	mutations := []func(u *store.User){
		func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} },
		func(u *store.User) {
			u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
		},
	}
	var secrets []string
	for _, mutate := range mutations {
		secrets = append(secrets, coldLookup(t, e, mutate, 1))
	}

	if _, err := e.writer.Client().Put(e.ctx(), "/tg/schema", `{"version":2}`); err != nil {
		t.Fatal(err)
	}
	e.synced()
	if e.reader.CopiesTrusted() {
		t.Fatal("copies still trusted on a store at schema 2")
	}
	for _, secret := range secrets {
		before := e.reader.Stats()
		e.mustVerify(secret)
		if n := e.reader.Stats().RangeRPCs - before.RangeRPCs; n != 2 {
			t.Errorf("after the move back: %d etcd requests, want 2 (a verdict from the copy kept)", n)
		}
	}
}

func coldLookup(t *testing.T, e *env, mutate func(u *store.User), rpcs int64) string {
	u, secret := e.user(mutate)
	e.synced()
	if !e.v.dir.Ready() {
		t.Fatal("the directory is not loaded")
	}
	before := e.reader.Stats()
	id, err := e.v.Verify(e.ctx(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.reader.Stats().RangeRPCs - before.RangeRPCs; n != rpcs {
		t.Errorf("a cold lookup took %d etcd requests, want %d", n, rpcs)
	}
	full, err := e.writer.LookupToken(e.ctx(), token.Sum(secret))
	if err != nil {
		t.Fatal(err)
	}
	want := identityFrom(full, token.Programmatic)
	if id.UserID != u.ID || !slices.Equal(id.Accounts, want.Accounts) || !slices.Equal(id.Policies, want.Policies) ||
		id.Role != want.Role {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	return secret
}

// TestDirectoryFollowsChanges: accounts and policies deleted, changed or
// created after the directory loaded reach the verdicts of tokens looked
// up afterwards, as a full read would judge them.
func TestDirectoryFollowsChanges(t *testing.T) {
	e := newEnv(t, Config{})
	e.synced()
	// Looked up once as loaded; each change then makes the cached
	// identities news, and they are looked up again.
	_, policyUser := e.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} })
	_, orgUser := e.user(func(u *store.User) {
		u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{e.act1, e.act2}
	})
	check := func(what string) {
		t.Helper()
		e.synced()
		for _, secret := range []string{policyUser, orgUser} {
			checkAgainstFullRead(t, e, what, secret)
		}
	}
	check("as loaded")
	if err := e.writer.DeleteAccount(e.ctx(), e.org, e.act2, operator); err != nil {
		t.Fatal(err)
	}
	check("an account deleted")
	if _, err := e.writer.ReplacePolicy(e.ctx(), e.org, e.pol, store.Policy{Name: "all", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/**"}}}}, nil, operator); err != nil {
		t.Fatal(err)
	}
	check("a policy rewritten")
	// Restarted after a lost history, the watch loads the directory anew.
	e.v.dir.Reset()
	check("the directory not loaded")
}

// checkAgainstFullRead compares the verifier's identity for secret with
// one built from a full read of the store at one revision.
func checkAgainstFullRead(t *testing.T, e *env, what, secret string) {
	t.Helper()
	id, err := e.v.Verify(e.ctx(), secret)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	full, err := e.writer.LookupToken(e.ctx(), token.Sum(secret))
	if err != nil {
		t.Fatal(err)
	}
	want := identityFrom(full, token.Programmatic)
	allows := func(id *Identity) bool { return id.Rules != nil && id.Rules.Allows("DELETE", []string{"/api/x"}) }
	if !slices.Equal(id.Accounts, want.Accounts) || !slices.Equal(id.Policies, want.Policies) || allows(id) != allows(want) {
		t.Fatalf("%s: identity %+v, want %+v", what, id, want)
	}
}

// TestDirectoryReloadedWhileWatching: a directory that is not ready (it
// could not be loaded when the watch started) is loaded by the heartbeat
// while the watch runs on, a policy rewritten meanwhile included; cold
// lookups then cost two requests again.
func TestDirectoryReloadedWhileWatching(t *testing.T) {
	e := newEnv(t, Config{})
	e.v.dir.Reset()
	if _, err := e.writer.ReplacePolicy(e.ctx(), e.org, e.pol, store.Policy{Name: "all", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/**"}}}}, nil, operator); err != nil {
		t.Fatal(err)
	}
	e.synced()
	deadline := time.Now().Add(10 * time.Second)
	for !e.v.dir.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the directory was not loaded again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, secret := e.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} })
	e.synced()
	checkAgainstFullRead(t, e, "after the reload", secret)
	if !e.mustVerify(secret).Rules.Allows("DELETE", []string{"/api/x"}) {
		t.Fatal("the policy rewritten before the reload is not in effect")
	}
	coldLookup(t, e, func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{e.pol} }, 2)
}

// TestCopiesWrittenAloneAreRepaired: on a store at schema 3, a user
// written without its copies (as a gateway of an older version writes it:
// fault injection, a raw etcd write) is noticed by the watch, and the
// copies are rewritten at once: a cold lookup then judges the user as
// stored. A change written with its copies needs no repair.
func TestCopiesWrittenAloneAreRepaired(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil {
		t.Fatal(err)
	}
	e.synced()
	u, secret := e.user(nil)
	other, otherSecret := e.user(nil)
	e.update(other, func(u *store.User) { u.Name = "renamed" })
	e.synced()
	if n := e.v.Stats().CopiesRepaired; n != 0 {
		t.Fatalf("%d repairs after changes written with their copies", n)
	}

	e.disableAlone(u.ID)
	deadline := time.Now().Add(10 * time.Second)
	for e.v.Stats().CopiesRepaired == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the copies of a user written alone were not repaired")
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, with a deadline
	}
	e.synced()
	if _, err := e.v.Verify(e.ctx(), secret); err == nil {
		t.Fatal("a cold lookup admitted a user disabled by an older gateway")
	}
	if id := e.mustVerify(otherSecret); id.UserName != "renamed" {
		t.Fatalf("the other user: %+v", id)
	}

	// A token record written alone (its expiry moved into the past) is
	// repaired alike.
	tokens, err := e.writer.ListTokens(e.ctx(), e.org, other.ID)
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens: %v %v", tokens, err)
	}
	rec := tokens[0]
	past := e.clock.now().Add(-time.Minute).UTC()
	rec.ExpiresAt, rec.LastUsedAt = &past, nil
	e.writeAlone("/tg/usertokens/"+e.org+"/"+other.ID+"/"+rec.ID, rec)
	deadline = time.Now().Add(10 * time.Second)
	for e.v.Stats().CopiesRepaired < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the copies of a token record written alone were not repaired")
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, with a deadline
	}
	e.synced()
	if _, err := e.v.Verify(e.ctx(), otherSecret); !errors.Is(err, ErrExpired) {
		t.Fatalf("a token expired by an older gateway: %v", err)
	}
}

// TestOlderGatewayRegisteredMovesTheStoreBack: a gateway that trusts
// copies and sees a gateway of an older version registered moves the
// store back to schema 2 within a few heartbeats, and stops trusting
// copies.
func TestOlderGatewayRegisteredMovesTheStoreBack(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil {
		t.Fatal(err)
	}
	e.synced()
	e.trustsCopies()
	if _, err := e.writer.Client().Put(e.ctx(), "/tg/_ratelimit/gateways/gw-old", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for e.reader.CopiesTrusted() {
		if time.Now().After(deadline) {
			t.Fatal("the store was not moved back with an older gateway registered")
		}
		time.Sleep(10 * time.Millisecond) // polling a flag, with a deadline
	}
	resp, err := e.writer.Client().Get(e.ctx(), "/tg/schema")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"version":2`) {
		t.Fatalf("schema key: %v %v", resp, err)
	}
}

// TestStartAfterAnOlderGatewayWroteUnwatched: a user disabled by a gateway
// of an older version (fault injection: a raw etcd write, the copies left
// as they were) while no gateway of this build ran is refused by a gateway
// that starts afterwards, from its first request on: its lookups read the
// records until its sweep has rewritten the stale copies, and the copies
// after it.
func TestStartAfterAnOlderGatewayWroteUnwatched(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil {
		t.Fatal(err)
	}
	u, secret := e.user(nil)
	e.synced()
	e.trustsCopies()
	e.mustVerify(secret)
	e.v.Close() // no gateway of this build watches from here

	e.disableAlone(u.ID)

	reader := store.New(e.srv.Client(), "/tg")
	v, err := New(reader, Config{now: e.clock.now, LookupTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if _, err := v.Verify(e.ctx(), secret); !errors.Is(err, ErrDisabled) {
		t.Fatalf("the first request after the start: %v, want disabled", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reader.CopiesTrusted() || v.Stats().CopiesRepaired != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not swept: trusted %v, repaired %d", reader.CopiesTrusted(), v.Stats().CopiesRepaired)
		}
		time.Sleep(5 * time.Millisecond) // polling a flag, with a deadline
	}
	if _, err := v.Verify(e.ctx(), secret); !errors.Is(err, ErrDisabled) {
		t.Fatalf("after the sweep: %v, want disabled", err)
	}
}

// writeAlone writes v under key as a gateway of an older version does:
// fault injection, a raw etcd write, the copies under the digests left as
// they were.
func (e *env) writeAlone(key string, v any) {
	e.t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.writer.Client().Put(e.ctx(), key, string(raw)); err != nil {
		e.t.Fatal(err)
	}
}

// disableAlone disables a user as a gateway of an older version does.
func (e *env) disableAlone(id string) {
	e.t.Helper()
	stored, err := e.writer.GetUser(e.ctx(), e.org, id)
	if err != nil {
		e.t.Fatal(err)
	}
	stored.Disabled = true
	e.writeAlone("/tg/users/"+e.org+"/"+id, stored)
}

// TestSuspectReadsRecords: a user the watch saw written without copies is
// judged from the records until its copies are repaired (the repair held
// back, fault injection), not from the stale copy; once repaired, from
// the copy again.
func TestSuspectReadsRecords(t *testing.T) {
	hold := make(chan struct{})
	e := newEnvWith(t, Config{}, func(v *Verifier) { v.beforeRepair = func() { <-hold } })
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before the verifier's Close, which waits for the repairer
	if _, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil {
		t.Fatal(err)
	}
	u, _ := e.user(nil)
	secret, nt2 := newToken(t, token.Programmatic) // a second token, never seen
	nt2.Token.Org, nt2.Token.User = e.org, u.ID
	if _, err := e.writer.CreateToken(e.ctx(), nt2, nil, operator); err != nil {
		t.Fatal(err)
	}
	e.synced()
	e.trustsCopies()

	e.disableAlone(u.ID)
	e.synced() // the watch has seen it: the user is a suspect
	before := e.reader.Stats().CopyLookups
	if _, err := e.v.Verify(e.ctx(), secret); !errors.Is(err, ErrDisabled) {
		t.Fatalf("a token of a suspect, never seen: %v, want disabled", err)
	}
	if e.reader.Stats().CopyLookups != before {
		t.Fatal("a suspect's token was judged from its copy")
	}
	release()
	deadline := time.Now().Add(10 * time.Second)
	for e.v.suspects.has(e.org, u.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the suspect was not repaired")
		}
		time.Sleep(5 * time.Millisecond) // polling a flag, with a deadline
	}
	e.v.identities.Clear()
	before = e.reader.Stats().CopyLookups
	if _, err := e.v.Verify(e.ctx(), secret); !errors.Is(err, ErrDisabled) || e.reader.Stats().CopyLookups != before+1 {
		t.Fatalf("after the repair: %v, %d copy lookups", err, e.reader.Stats().CopyLookups-before)
	}
}

// TestCopiesNeedAWatchInSync: a gateway whose watch was last known in sync
// longer than max_stale ago (paused, or cut off from etcd) judges cold
// tokens from the records, not from copies an older gateway may have left
// stale meanwhile; in sync again, from the copies.
func TestCopiesNeedAWatchInSync(t *testing.T) {
	e := newEnv(t, Config{MaxStale: time.Minute})
	if _, err := e.writer.CheckSchema(e.ctx(), "test"); err != nil {
		t.Fatal(err)
	}
	_, one := e.user(nil)
	_, two := e.user(nil)
	e.synced()
	e.trustsCopies()
	e.confirmedNow()
	e.clock.advance(2 * time.Minute) // no news from etcd for longer than max_stale
	before := e.reader.Stats()
	e.mustVerify(one)
	if after := e.reader.Stats(); after.CopyLookups != before.CopyLookups || after.RangeRPCs-before.RangeRPCs != 2 {
		t.Fatalf("out of sync: %d copy lookups, %d requests; want the records read", after.CopyLookups-before.CopyLookups, after.RangeRPCs-before.RangeRPCs)
	}
	e.confirmedNow()
	before = e.reader.Stats()
	e.mustVerify(two)
	if after := e.reader.Stats(); after.CopyLookups != before.CopyLookups+1 {
		t.Fatal("in sync again, the copy is not read")
	}
}
