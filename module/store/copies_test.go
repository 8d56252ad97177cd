package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// readRef reads the value under a token's digest; nil when there is none.
func readRef(t *testing.T, s *Store, hexHash string) *tokenRef {
	t.Helper()
	resp, err := s.Client().Get(ctxT(t), s.tokenKeyHex(hexHash))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var ref tokenRef
	if err := json.Unmarshal(resp.Kvs[0].Value, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref
}

// checkCopies fails unless every token of the user has, under its digest,
// a copy of its record and of the user as stored now.
func checkCopies(t *testing.T, s *Store, org, user string) {
	t.Helper()
	ctx := ctxT(t)
	u, err := s.GetUser(ctx, org, user)
	if err != nil {
		t.Fatal(err)
	}
	records, err := listAll[Token](ctx, s, s.userTokensPrefix(org, user))
	if err != nil || len(records) == 0 {
		t.Fatalf("tokens of %s: %v %v", user, records, err)
	}
	for _, rec := range records {
		ref := readRef(t, s, rec.Hash)
		if ref == nil || ref.Copy == nil {
			t.Fatalf("token %s: no copy under its digest: %+v", rec.ID, ref)
		}
		if !reflect.DeepEqual(ref.Copy.Token, rec) {
			t.Errorf("token %s: copy of the record %+v, record %+v", rec.ID, ref.Copy.Token, rec)
		}
		if !reflect.DeepEqual(ref.Copy.User, *u) {
			t.Errorf("token %s: copy of the user %+v, user %+v", rec.ID, ref.Copy.User, *u)
		}
	}
}

// TestCopiesFollowEveryWrite: every write of a token's record or of its
// user leaves under the token's digest a copy equal to both.
func TestCopiesFollowEveryWrite(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, func(u *User) {
		u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, f.act2}
	})
	checkCopies(t, s, f.org, u.ID)

	_, nt := newToken(t, token.Programmatic)
	nt.Token = Token{Org: f.org, User: u.ID, ID: NewTokenID(), Name: "second"}
	second, err := s.CreateToken(ctx, nt, nil, operator)
	if err != nil {
		t.Fatal(err)
	}
	checkCopies(t, s, f.org, u.ID)

	_, nt = newToken(t, token.Programmatic)
	nt.Token = Token{Org: f.org, User: u.ID, ID: NewTokenID()}
	if _, err := s.CreateToken(ctx, nt, &Rotation{Replaces: second.ID, Overlap: time.Hour}, operator); err != nil {
		t.Fatal(err)
	}
	checkCopies(t, s, f.org, u.ID) // the replaced token's copy has its expiry

	if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Disabled = true; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	checkCopies(t, s, f.org, u.ID)

	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatal(err)
	}
	checkCopies(t, s, f.org, u.ID)
	if got, _ := s.GetUser(ctx, f.org, u.ID); !slices.Equal(got.Accounts, []string{f.act1}) {
		t.Fatalf("accounts after the deletion: %v", got.Accounts)
	}

	imported := User{ID: NewUserID(), Org: f.org, Type: TypeProgrammatic, Level: LevelAccount, Account: f.act1, Role: RoleViewer, Name: "imported"}
	_, nt = newToken(t, token.Programmatic)
	nt.Token = Token{Org: f.org, User: imported.ID, ID: NewTokenID()}
	if err := s.Import(ctx, []User{imported}, []NewToken{nt}); err != nil {
		t.Fatal(err)
	}
	checkCopies(t, s, f.org, imported.ID)
}

// TestAccountDeletionRecopiesInBatches: removing an account from users
// whose tokens' copies need rewriting too takes as many transactions as
// etcd's limits require, and leaves every copy current.
func TestAccountDeletionRecopiesInBatches(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	var users []User
	var tokens []NewToken
	for range 12 {
		u := User{ID: NewUserID(), Org: f.org, Type: TypeProgrammatic, Level: LevelOrganization, Accounts: []string{f.act1, f.act2},
			Role: RoleViewer, Name: "many tokens"}
		users = append(users, u)
		for range 20 {
			_, nt := newToken(t, token.Programmatic)
			nt.Token = Token{Org: f.org, User: u.ID, ID: NewTokenID()}
			tokens = append(tokens, nt)
		}
	}
	if err := s.Import(ctx, users, tokens); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		checkCopies(t, s, f.org, u.ID)
	}
}

// TestRecopyNeverRevivesARevokedToken: a token revoked between the read of
// a user's tokens and the commit of the user's change stays revoked; its
// copy is not written again.
func TestRecopyNeverRevivesARevokedToken(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil)
	toks, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	revoked := false
	err = s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var cur User
		if _, err := r.getJSON(s.userKey(f.org, u.ID), &cur); err != nil {
			return nil, err
		}
		cur.Name = "renamed"
		var w writes
		w.put(s.userKey(f.org, u.ID), cur)
		if err := r.recopy(&w, &cur); err != nil {
			return nil, err
		}
		if !revoked {
			// Another admin revokes the token now.
			revoked = true
			if err := s.RevokeToken(ctx, f.org, u.ID, toks[0].ID, operator); err != nil {
				return nil, err
			}
		}
		return w.ops, w.err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ref := readRef(t, s, toks[0].Hash); ref != nil {
		t.Fatalf("the revoked token's digest is back: %+v", ref)
	}
	if got, _ := s.GetUser(ctx, f.org, u.ID); got.Name != "renamed" {
		t.Fatalf("the user's change was lost: %+v", got)
	}
}

// TestLookupReadsOneKeyAtSchema3: on a store at schema 3 a found token's
// lookup is one read, and finds what the reads of the record and the user
// find.
func TestLookupReadsOneKeyAtSchema3(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	if check, err := s.CheckSchema(ctx, "test"); err != nil || !check.Created || check.Version != 3 || !s.CopiesTrusted() {
		t.Fatalf("schema: %+v %v", check, err)
	}
	f := newFixture(t, s)
	u, secret := f.programmatic(t, func(u *User) { u.Role, u.Policies = RolePolicy, []string{f.polAct} })
	h := token.Sum(secret)
	// As a gateway does: accounts and policies from the directory.
	d := s.NewDirectory()
	if err := d.Load(ctx, 0); err != nil {
		t.Fatal(err)
	}

	before := s.Stats()
	one, err := s.LookupTokenIn(ctx, h, d)
	if err != nil || !one.Found {
		t.Fatalf("lookup: %+v %v", one, err)
	}
	after := s.Stats()
	if n := after.RangeRPCs - before.RangeRPCs; n != 1 {
		t.Errorf("a lookup from the copy took %d reads, want 1", n)
	}
	if after.CopyLookups != before.CopyLookups+1 {
		t.Errorf("copy lookups %d → %d", before.CopyLookups, after.CopyLookups)
	}

	s.noteSchema(2)
	two, err := s.LookupTokenIn(ctx, h, d)
	if err != nil || !two.Found {
		t.Fatalf("lookup: %+v %v", two, err)
	}
	if n := s.Stats().RangeRPCs - after.RangeRPCs; n != 2 {
		t.Errorf("a lookup from the records took %d reads, want 2", n)
	}
	if !reflect.DeepEqual(one.Token, two.Token) || !reflect.DeepEqual(one.User, two.User) ||
		!reflect.DeepEqual(one.Policies, two.Policies) || !slices.Equal(one.Accounts, two.Accounts) {
		t.Errorf("from the copy:\n%+v\nfrom the records:\n%+v", one, two)
	}
	if !slices.Contains(one.Keys, s.schemaKey()) || !slices.Contains(one.Keys, s.userKey(f.org, u.ID)) {
		t.Errorf("a verdict from the copy depends on %v", one.Keys)
	}
}

// TestUpgradeWaitsForEveryGateway: a store at schema 2 written by a
// gateway that keeps no copies moves to 3 only once no such gateway is
// registered (the upgrade names those that are); the move rewrites what
// that gateway left stale or missing; one registering afterwards makes
// GuardCopies move the store back.
func TestUpgradeWaitsForEveryGateway(t *testing.T) {
	s, _ := newStore(t)
	s.Writer = "tokengate v9.9.9"
	ctx := ctxT(t)
	v2, _ := json.Marshal(Schema{Version: 2, WrittenBy: "tokengate v0.2.0"})
	if _, err := s.Client().Put(ctx, s.schemaKey(), string(v2)); err != nil {
		t.Fatal(err)
	}
	if check, err := s.CheckSchema(ctx, "test"); err != nil || check.Version != 2 || !check.UpgradePending || s.CopiesTrusted() {
		t.Fatalf("schema: %+v %v", check, err)
	}
	f := newFixture(t, s)
	u, secret := f.programmatic(t, nil)
	h := token.Sum(secret)

	// What a gateway of schema 2 writes (fault injection: raw etcd
	// writes standing for one): the user disabled without its copy, and a
	// token whose digest holds no copy.
	stored, _ := s.GetUser(ctx, f.org, u.ID)
	stored.Disabled = true
	b, _ := json.Marshal(stored)
	if _, err := s.Client().Put(ctx, s.userKey(f.org, u.ID), string(b)); err != nil {
		t.Fatal(err)
	}
	_, nt := newToken(t, token.Programmatic)
	bare := Token{ID: NewTokenID(), Org: f.org, User: u.ID, Hash: hex.EncodeToString(nt.Hash[:]), CreatedAt: time.Now().UTC()}
	rec, _ := json.Marshal(bare)
	ref, _ := json.Marshal(tokenRef{Org: f.org, User: u.ID, Token: bare.ID})
	if _, err := s.Client().Txn(ctx).Then(clientv3.OpPut(s.userTokenKey(f.org, u.ID, bare.ID), string(rec)),
		clientv3.OpPut(s.tokenKeyHex(bare.Hash), string(ref))).Commit(); err != nil {
		t.Fatal(err)
	}
	// Until the upgrade the stale copy is not read.
	if l, err := s.LookupToken(ctx, h); err != nil || !l.Found || !l.User.Disabled {
		t.Fatalf("lookup before the upgrade: %+v %v", l, err)
	}

	register := func(name, value string) {
		t.Helper()
		if _, err := s.Client().Put(ctx, s.gatewaysPrefix()+name, value); err != nil {
			t.Fatal(err)
		}
	}
	register("gw-old", "")
	register("gw-new", Announcement)
	res, err := s.Upgrade(ctx)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "gw-old") || res.Upgraded || res.Version != 2 ||
		!slices.Equal(res.Holdouts, []string{"gw-old"}) || s.CopiesTrusted() {
		t.Fatalf("upgrade with an old gateway registered: %+v %v", res, err)
	}

	if _, err := s.Client().Delete(ctx, s.gatewaysPrefix()+"gw-old"); err != nil {
		t.Fatal(err)
	}
	res, err = s.Upgrade(ctx)
	if err != nil || !res.Upgraded || res.Version != 3 || res.Copies != 1 || !s.CopiesTrusted() {
		t.Fatalf("upgrade: %+v %v", res, err)
	}
	checkCopies(t, s, f.org, u.ID)
	writtenBy := func() string {
		t.Helper()
		resp, err := s.Client().Get(ctx, s.schemaKey())
		var sc Schema
		if err != nil || len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &sc) != nil {
			t.Fatalf("schema key: %v %v", resp, err)
		}
		return sc.WrittenBy
	}
	if by := writtenBy(); by != "tokengate v9.9.9 (upgrade)" {
		t.Errorf("the upgrade wrote written_by %q", by)
	}
	d := s.NewDirectory()
	if err := d.Load(ctx, 0); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().RangeRPCs
	if l, err := s.LookupTokenIn(ctx, h, d); err != nil || !l.Found || !l.User.Disabled || s.Stats().RangeRPCs-before != 1 {
		t.Fatalf("lookup after the upgrade: %+v %v", l, err)
	}
	if res, err := s.Upgrade(ctx); err != nil || res.Upgraded || res.Version != 3 {
		t.Fatalf("again: %+v %v", res, err)
	}

	if res, err := s.GuardCopies(ctx); err != nil || res.Downgraded || res.Version != 3 {
		t.Fatalf("guarding with no old gateway: %+v %v", res, err)
	}
	register("gw-late", "")
	res, err = s.GuardCopies(ctx)
	if err != nil || !res.Downgraded || res.Version != 2 || s.CopiesTrusted() {
		t.Fatalf("an old gateway after the upgrade: %+v %v", res, err)
	}
	if by := writtenBy(); !strings.HasPrefix(by, "tokengate v9.9.9 (moved back") {
		t.Errorf("the move back wrote written_by %q", by)
	}
}

// TestUpgradeLosesToALateRegistration: the version is not written when a
// gateway registered after the upgrade looked at the registrations.
func TestUpgradeLosesToALateRegistration(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	v2, _ := json.Marshal(Schema{Version: 2})
	put, err := s.Client().Put(ctx, s.schemaKey(), string(v2))
	if err != nil {
		t.Fatal(err)
	}
	looked := put.Header.Revision
	if _, err := s.Client().Put(ctx, s.gatewaysPrefix()+"gw-late", ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.writeSchema(ctx, 3, put.Header.Revision, looked, "test"); err != nil || ok {
		t.Fatalf("written despite a later registration: %v %v", ok, err)
	}
}

// TestNoteChangeFollowsTheSchemaKey: the watch's news of the schema key
// decides whether copies are trusted, once a sweep has followed the
// schema's reading.
func TestNoteChangeFollowsTheSchemaKey(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	if err := s.ReadSchema(ctx, 0); err != nil || s.CopiesTrusted() || !s.SchemaKnown() {
		t.Fatalf("no schema key: trusted %v, known %v, %v", s.CopiesTrusted(), s.SchemaKnown(), err)
	}
	wch := s.Client().Watch(ctx, s.schemaKey())
	for i, v := range []int{3, 2, 3} {
		b, _ := json.Marshal(Schema{Version: v})
		if _, err := s.Client().Put(ctx, s.schemaKey(), string(b)); err != nil {
			t.Fatal(err)
		}
		wr := <-wch
		for _, ev := range wr.Events {
			s.NoteChange(ev)
		}
		if first := i == 0; v == 3 && first {
			// The schema was read anew: copies wait for a sweep.
			if s.CopiesTrusted() || !s.SweepDue() {
				t.Fatalf("schema 3 before a sweep: trusted %v, due %v", s.CopiesTrusted(), s.SweepDue())
			}
			if _, _, err := s.SweepCopies(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if s.CopiesTrusted() != (v == 3) {
			t.Fatalf("schema %d: trusted %v", v, s.CopiesTrusted())
		}
	}
	if _, err := s.Client().Delete(ctx, s.schemaKey()); err != nil {
		t.Fatal(err)
	}
	for _, ev := range (<-wch).Events {
		s.NoteChange(ev)
	}
	if s.CopiesTrusted() {
		t.Fatal("trusted with the schema key gone")
	}
}

// rawPut writes v under key as a gateway that keeps no copies writes it:
// fault injection, a raw etcd write, the reference under the digest left
// as it was.
func rawPut(t *testing.T, s *Store, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Put(ctxT(t), key, string(b)); err != nil {
		t.Fatal(err)
	}
}

// TestSweepFindsWhatNobodyWatched: what a gateway that keeps no copies
// wrote on a store at schema 3 while no gateway of this build watched — a
// user disabled, a token's expiry moved — is found by the sweep a watch
// makes as it starts: until the sweep ends, lookups judge by the records;
// after it, the copies say what the records say. Users whose copies are
// current, and users without tokens, are not rewritten; a second sweep
// rewrites nothing.
func TestSweepFindsWhatNobodyWatched(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	if _, err := s.CheckSchema(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s)
	disabled, disabledSecret := f.programmatic(t, nil)
	expired, expiredSecret := f.programmatic(t, nil)
	untouched, _ := f.programmatic(t, nil)
	tokenless, err := s.CreateUser(ctx, User{Org: f.org, Type: TypeUI, Level: LevelAccount, Account: f.act1, Role: RoleViewer, Name: "ui", Email: "ui@example.com"}, nil, operator)
	if err != nil {
		t.Fatal(err)
	}

	u, _ := s.GetUser(ctx, f.org, disabled.ID)
	u.Disabled = true
	rawPut(t, s, s.userKey(f.org, u.ID), u)
	records, _ := s.ListTokens(ctx, f.org, expired.ID)
	rec := records[0]
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rec.ExpiresAt, rec.LastUsedAt = &past, nil
	rawPut(t, s, s.userTokenKey(f.org, expired.ID, rec.ID), rec)
	tu, _ := s.GetUser(ctx, f.org, tokenless.ID)
	tu.Name = "renamed alone"
	rawPut(t, s, s.userKey(f.org, tu.ID), tu)

	// A watch starts over: the schema is read anew, the copies wait.
	if err := s.ReadSchema(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if s.CopiesTrusted() || !s.SweepDue() {
		t.Fatalf("before the sweep: trusted %v, due %v", s.CopiesTrusted(), s.SweepDue())
	}
	judge := func(when string) {
		t.Helper()
		for _, c := range []struct {
			secret string
			bad    func(l *Lookup) bool
		}{
			{disabledSecret, func(l *Lookup) bool { return !l.User.Disabled }},
			{expiredSecret, func(l *Lookup) bool { return l.Token.ExpiresAt == nil || !l.Token.ExpiresAt.Equal(past) }},
		} {
			l, err := s.LookupToken(ctx, token.Sum(c.secret))
			if err != nil || !l.Found || c.bad(l) {
				t.Fatalf("%s: lookup %+v %v", when, l, err)
			}
		}
	}
	before := s.Stats().CopyLookups
	judge("before the sweep")
	if s.Stats().CopyLookups != before {
		t.Fatal("a copy was trusted before the sweep")
	}

	want := [][2]string{{f.org, disabled.ID}, {f.org, expired.ID}}
	slices.SortFunc(want, func(a, b [2]string) int { return strings.Compare(a[1], b[1]) })
	for _, page := range []int64{sweepPage, 1, 2} { // and read a key or two at a time
		was := sweepPage
		sweepPage = page
		stale, _, err := s.StaleUsers(ctx)
		sweepPage = was
		slices.SortFunc(stale, func(a, b [2]string) int { return strings.Compare(a[1], b[1]) })
		if err != nil || !slices.Equal(stale, want) {
			t.Fatalf("pages of %d: stale users %v %v, want %v (not %s nor %s)", page, stale, err, want, untouched.ID, tokenless.ID)
		}
	}
	if n, _, err := s.SweepCopies(ctx); n != 2 || err != nil {
		t.Fatalf("swept %d %v, want 2", n, err)
	}
	if !s.CopiesTrusted() || s.SweepDue() {
		t.Fatalf("after the sweep: trusted %v, due %v", s.CopiesTrusted(), s.SweepDue())
	}
	before = s.Stats().CopyLookups
	judge("after the sweep")
	if s.Stats().CopyLookups != before+2 {
		t.Fatal("the copies are not read after the sweep")
	}
	for _, id := range []string{disabled.ID, expired.ID, untouched.ID} {
		checkCopies(t, s, f.org, id)
	}
	if err := s.ReadSchema(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.SweepCopies(ctx); n != 0 || err != nil {
		t.Fatalf("a second sweep rewrote %d %v", n, err)
	}
}

// TestSweepReadAgainMeanwhileTrustsNothing: a sweep that ends after the
// schema was read again does not make the copies trusted: it may have
// looked before what the new reading stands for.
func TestSweepReadAgainMeanwhileTrustsNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	if _, err := s.CheckSchema(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadSchema(ctx, 0); err != nil {
		t.Fatal(err)
	}
	began := s.sweeps.Load()
	if err := s.ReadSchema(ctx, 0); err != nil { // the watch starts over meanwhile
		t.Fatal(err)
	}
	s.noteSwept(began)
	if s.CopiesTrusted() {
		t.Fatal("trusted on a sweep that began before the last reading")
	}
}

// TestRefRevisionsOf: a reference is found by its digest's first 8 bytes;
// two digests sharing them make both ambiguous, which recopies their users.
func TestRefRevisionsOf(t *testing.T) {
	refs := refRevisions{{1, 10}, {5, 20}, {5, 21}, {9, 30}}
	for _, c := range []struct {
		prefix uint64
		rev    int64
		ok     bool
	}{{1, 10, true}, {5, ambiguous, true}, {9, 30, true}, {0, 0, false}, {6, 0, false}, {10, 0, false}} {
		if rev, ok := refs.of(c.prefix); rev != c.rev || ok != c.ok {
			t.Errorf("of(%d) = %d %v, want %d %v", c.prefix, rev, ok, c.rev, c.ok)
		}
	}
}
