package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/token"
)

var operator = Actor{ID: "operator", Type: ActorOperator}

func newStore(t *testing.T) (*Store, *etcdtest.Server) {
	t.Helper()
	srv := etcdtest.Start(t)
	return New(srv.Client(), "/tg"), srv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture builds an organization with two accounts and a policy on each.
type fixture struct {
	s              *Store
	org            string
	act1, act2     string
	polOrg, polAct string
}

func newFixture(t *testing.T, s *Store) fixture {
	t.Helper()
	ctx := ctxT(t)
	f := fixture{s: s, org: "acme"}
	if _, err := s.CreateOrg(ctx, Org{ID: f.org, Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&f.act1, &f.act2} {
		a, err := s.CreateAccount(ctx, Account{Org: f.org, Name: "prod"}, operator)
		if err != nil {
			t.Fatal(err)
		}
		*p = a.ID
	}
	stmt := []Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/*"}}}
	p, err := s.CreatePolicy(ctx, Policy{Org: f.org, Name: "read", Statements: stmt}, operator)
	if err != nil {
		t.Fatal(err)
	}
	f.polOrg = p.ID
	p, err = s.CreatePolicy(ctx, Policy{Org: f.org, Account: f.act1, Name: "act1 read", Statements: stmt}, operator)
	if err != nil {
		t.Fatal(err)
	}
	f.polAct = p.ID
	return f
}

func (f fixture) programmatic(t *testing.T, mutate func(u *User)) (*User, string) {
	t.Helper()
	u := User{Org: f.org, Type: TypeProgrammatic, Level: LevelAccount, Account: f.act1, Role: RoleViewer, Name: "ci-bot"}
	if mutate != nil {
		mutate(&u)
	}
	secret, nt := newToken(t, token.Programmatic)
	created, err := f.s.CreateUser(ctxT(t), u, &nt, operator)
	if err != nil {
		t.Fatal(err)
	}
	return created, secret
}

func newToken(t *testing.T, kind token.Kind) (string, NewToken) {
	t.Helper()
	secret, err := token.Generate(kind)
	if err != nil {
		t.Fatal(err)
	}
	return secret, NewToken{Hash: token.Sum(secret), Token: Token{ID: NewTokenID(), Name: "t", Hint: token.Hint(secret)}}
}

func TestOrgsAndAccounts(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	o, err := s.CreateOrg(ctx, Org{ID: "acme", Name: "Acme"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	if o.CreatedBy != operator || o.CreatedAt.IsZero() {
		t.Fatalf("org = %+v", o)
	}
	if _, err := s.CreateOrg(ctx, Org{ID: "acme", Name: "Again"}, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate org: %v", err)
	}
	if _, err := s.CreateOrg(ctx, Org{ID: "Bad/Id", Name: "x"}, operator); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad org id: %v", err)
	}
	gen, err := s.CreateOrg(ctx, Org{Name: "Generated"}, operator)
	if err != nil || !strings.HasPrefix(gen.ID, "org-") {
		t.Fatalf("generated org = %+v, %v", gen, err)
	}
	got, err := s.GetOrg(ctx, "acme")
	if err != nil || got.Name != "Acme" {
		t.Fatalf("GetOrg = %+v, %v", got, err)
	}
	if _, err := s.GetOrg(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetOrg(nope) = %v", err)
	}

	a, err := s.CreateAccount(ctx, Account{Org: "acme", ID: "act-1a2b3c4d", Name: "prod"}, operator)
	if err != nil || a.ID != "act-1a2b3c4d" {
		t.Fatalf("CreateAccount = %+v, %v", a, err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: "acme", ID: "act-1a2b3c4d", Name: "x"}, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate account: %v", err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: "acme", ID: "act-XYZ", Name: "x"}, operator); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad account id: %v", err)
	}
	if _, err := s.CreateAccount(ctx, Account{Org: "nope", Name: "x"}, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("account in missing org: %v", err)
	}
	b, err := s.CreateAccount(ctx, Account{Org: "acme", Name: "dev"}, operator)
	if err != nil || !ValidAccountID(b.ID) {
		t.Fatalf("generated account = %+v, %v", b, err)
	}
	list, err := s.ListAccounts(ctx, "acme")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListAccounts = %+v, %v", list, err)
	}
}

func TestUserLifecycle(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)

	u, secret := f.programmatic(t, nil)
	if !ValidUserID(u.ID) || u.CreatedBy != operator {
		t.Fatalf("user = %+v", u)
	}
	got, err := s.GetUser(ctx, f.org, u.ID)
	if err != nil || got.Name != "ci-bot" || got.Account != f.act1 {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	tokens, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil || len(tokens) != 1 || tokens[0].Hint != token.Hint(secret) {
		t.Fatalf("ListTokens = %+v, %v", tokens, err)
	}

	updated, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error {
		u.Role, u.Policies = RolePolicy, []string{f.polAct}
		u.ID, u.Type = "u-000000000000", TypeUI // must be ignored
		return nil
	}, operator)
	if err != nil || updated.Role != RolePolicy || updated.ID != u.ID || updated.Type != TypeProgrammatic {
		t.Fatalf("UpdateUser = %+v, %v", updated, err)
	}

	if err := s.DeleteUser(ctx, f.org, u.ID, operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, f.org, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
	l, err := s.LookupToken(ctx, token.Sum(secret))
	if err != nil || l.Found {
		t.Fatalf("token of deleted user: %+v, %v", l, err)
	}
	resp, err := s.Client().Get(ctx, "/tg/usertokens/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("token records left behind: %d, %v", resp.Count, err)
	}
	resp, err = s.Client().Get(ctx, "/tg/tokens/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("token digests left behind: %d, %v", resp.Count, err)
	}
}

// TestDeleteUserIsOneRevision: the user and all its tokens disappear in the
// same etcd revision, so no gateway can see a user gone but a token alive.
func TestDeleteUserIsOneRevision(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil)
	for range 3 {
		_, nt := newToken(t, token.Programmatic)
		nt.Token.Org, nt.Token.User = f.org, u.ID
		if _, err := s.CreateToken(ctx, nt, nil, operator); err != nil {
			t.Fatal(err)
		}
	}
	w := s.Client().Watch(ctx, "/tg/", clientv3.WithPrefix())
	if err := s.DeleteUser(ctx, f.org, u.ID, operator); err != nil {
		t.Fatal(err)
	}
	resp := <-w
	var deletes int
	for _, ev := range resp.Events {
		if ev.Type == clientv3.EventTypeDelete {
			deletes++
		}
		if ev.Kv.ModRevision != resp.Events[0].Kv.ModRevision {
			t.Fatalf("events at different revisions: %v", resp.Events)
		}
	}
	// user + 4 digests + 4 records
	if deletes != 9 {
		t.Fatalf("got %d deletes in the first watch response, want 9", deletes)
	}
}

func TestUserValidationAndReferences(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	other, err := s.CreateOrg(ctx, Org{ID: "other", Name: "Other"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	otherAct, err := s.CreateAccount(ctx, Account{Org: other.ID, Name: "x"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	base := User{Org: f.org, Type: TypeProgrammatic, Level: LevelAccount, Account: f.act1, Role: RoleViewer, Name: "bot"}
	tests := []struct {
		name   string
		mutate func(u *User)
		field  string
	}{
		{"no type", func(u *User) { u.Type = "" }, "type"},
		{"bad type", func(u *User) { u.Type = "robot" }, "type"},
		{"no name", func(u *User) { u.Name = " " }, "name"},
		{"long name", func(u *User) { u.Name = strings.Repeat("n", MaxNameLen+1) }, "name"},
		{"control in name", func(u *User) { u.Name = "a\nb" }, "name"},
		{"long description", func(u *User) { u.Description = strings.Repeat("d", MaxDescriptionLen+1) }, "description"},
		{"ui without email", func(u *User) { u.Type = TypeUI }, "email"},
		{"ui bad email", func(u *User) { u.Type, u.Email = TypeUI, "not-an-address" }, "email"},
		{"ui display-name email", func(u *User) { u.Type, u.Email = TypeUI, "Ana <ana@example.com>" }, "email"},
		{"programmatic with email", func(u *User) { u.Email = "a@example.com" }, "email"},
		{"no level", func(u *User) { u.Level = "" }, "level"},
		{"account level without account", func(u *User) { u.Account = "" }, "account"},
		{"account level with accounts", func(u *User) { u.Accounts = []string{f.act2} }, "accounts"},
		{"unknown account", func(u *User) { u.Account = "act-00000000" }, "account"},
		{"other org's account", func(u *User) { u.Account = otherAct.ID }, "account"},
		{"org level with account", func(u *User) { u.Level = LevelOrganization }, "account"},
		{"org level policy role", func(u *User) {
			u.Level, u.Account, u.Role, u.Policies = LevelOrganization, "", RolePolicy, []string{f.polOrg}
		}, "role"},
		{"org level duplicate accounts", func(u *User) {
			u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, f.act1}
		}, "accounts"},
		{"org level unknown account", func(u *User) {
			u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{"act-00000000"}
		}, "accounts"},
		{"bad role", func(u *User) { u.Role = "owner" }, "role"},
		{"policy role without policies", func(u *User) { u.Role = RolePolicy }, "policies"},
		{"policies without policy role", func(u *User) { u.Policies = []string{f.polOrg} }, "policies"},
		{"unknown policy", func(u *User) { u.Role, u.Policies = RolePolicy, []string{"pol-00000000"} }, "policies"},
		{"other account's policy", func(u *User) { u.Account, u.Role, u.Policies = f.act2, RolePolicy, []string{f.polAct} }, "policies"},
		{"network not a CIDR", func(u *User) { u.AllowedCIDRs = []string{"10.0.0.0/33"} }, "allowed_cidrs"},
		{"network with host bits", func(u *User) { u.AllowedCIDRs = []string{"10.1.2.3/8"} }, "allowed_cidrs"},
		{"network a bare address", func(u *User) { u.AllowedCIDRs = []string{"10.0.0.1"} }, "allowed_cidrs"},
		{"network IPv4-mapped", func(u *User) { u.AllowedCIDRs = []string{"::ffff:10.0.0.0/104"} }, "allowed_cidrs"},
		{"network with a zone", func(u *User) { u.AllowedCIDRs = []string{"fe80::%eth0/64"} }, "allowed_cidrs"},
		{"network listed twice", func(u *User) { u.AllowedCIDRs = []string{"2001:db8::/32", "2001:DB8:0::/32"} }, "allowed_cidrs"},
		{"network too long", func(u *User) { u.AllowedCIDRs = []string{strings.Repeat("1", 65)} }, "allowed_cidrs"},
		{"too many networks", func(u *User) {
			u.AllowedCIDRs = nil
			for i := range MaxCIDRsOfUser + 1 {
				u.AllowedCIDRs = append(u.AllowedCIDRs, fmt.Sprintf("10.0.%d.0/24", i))
			}
		}, "allowed_cidrs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base
			tt.mutate(&u)
			_, err := s.CreateUser(ctx, u, nil, operator)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("CreateUser = %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
	// The same rules hold for updates: an account-level user cannot be
	// widened to another org's account or a foreign policy.
	u, _ := f.programmatic(t, nil)
	for _, tt := range tests {
		t.Run("update "+tt.name, func(t *testing.T) {
			_, err := s.UpdateUser(ctx, f.org, u.ID, func(v *User) error {
				keep := v.Type
				tt.mutate(v)
				if v.Type != keep {
					t.Skip("type is immutable on update")
				}
				return nil
			}, operator)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("UpdateUser = %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
}

// TestAllowedCIDRs: networks are stored in canonical form, in the order
// given, as many as the limit; an update replaces or clears them and is
// audited like any other change.
func TestAllowedCIDRs(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, func(u *User) {
		u.AllowedCIDRs = []string{"2001:0DB8::/32", "10.0.0.0/8", "::1/128", "0.0.0.0/0"}
	})
	want := []string{"2001:db8::/32", "10.0.0.0/8", "::1/128", "0.0.0.0/0"}
	if !slices.Equal(u.AllowedCIDRs, want) {
		t.Fatalf("created with %q, want %q", u.AllowedCIDRs, want)
	}
	if got, err := s.GetUser(ctx, f.org, u.ID); err != nil || !slices.Equal(got.AllowedCIDRs, want) {
		t.Fatalf("stored %q, %v; want %q", got.AllowedCIDRs, err, want)
	}
	var most []string
	for i := range MaxCIDRsOfUser {
		most = append(most, fmt.Sprintf("10.%d.0.0/16", i))
	}
	for _, list := range [][]string{most, {"192.0.2.0/24"}, {}} {
		updated, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.AllowedCIDRs = list; return nil }, operator)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetUser(ctx, f.org, u.ID)
		if err != nil || !slices.Equal(got.AllowedCIDRs, updated.AllowedCIDRs) || len(got.AllowedCIDRs) != len(list) {
			t.Fatalf("after updating to %d networks: stored %q, %v", len(list), got.AllowedCIDRs, err)
		}
	}
	events, _, err := s.ListEvents(ctx, f.org, "", 10, "")
	if err != nil || len(events) < 3 || events[0].Action != ActionUserUpdate || events[0].Target != u.ID {
		t.Fatalf("audit: %+v, %v", events, err)
	}
}

func TestRateLimit(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, func(u *User) { u.RateLimit = &RateLimit{Requests: 100, Window: "120s"} })
	if u.RateLimit == nil || *u.RateLimit != (RateLimit{100, "2m"}) {
		t.Fatalf("created with %+v, want 100 per 2m", u.RateLimit)
	}
	for window, stored := range map[string]string{"1s": "1s", "90s": "90s", "1h0m0s": "1h", "24h": "24h", "1440m": "24h"} {
		got, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error {
			u.RateLimit = &RateLimit{Requests: 5, Window: window}
			return nil
		}, operator)
		if err != nil || got.RateLimit.Window != stored {
			t.Fatalf("window %q: %+v, %v; want %q", window, got.RateLimit, err, stored)
		}
	}
	bad := []RateLimit{{0, "1s"}, {-1, "1s"}, {MaxRateRequests + 1, "1s"}, {1, ""}, {1, "0s"}, {1, "999ms"},
		{1, "1500ms"}, {1, "24h1s"}, {1, "-1s"}, {1, "1 s"}, {1, "1d"}}
	for _, rl := range bad {
		_, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.RateLimit = &rl; return nil }, operator)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "rate_limit.") {
			t.Errorf("%+v: %v, want a rate_limit field error", rl, err)
		}
	}
	// Another change keeps the limit; clearing it removes it.
	got, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Name = "renamed"; return nil }, operator)
	if err != nil || got.RateLimit == nil || got.RateLimit.Requests != 5 {
		t.Fatalf("after a rename: %+v, %v", got.RateLimit, err)
	}
	if got, err = s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.RateLimit = nil; return nil }, operator); err != nil || got.RateLimit != nil {
		t.Fatalf("cleared: %+v, %v", got.RateLimit, err)
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":          "10.0.0.0/8",
		"2001:0DB8::/32":      "2001:db8::/32",
		"::/0":                "::/0",
		"10.1.2.3/8":          "write 10.0.0.0/8 for the network, or 10.1.2.3/32 for one address",
		"::ffff:10.0.0.0/104": "write it as 10.0.0.0/8",
		"::ffff:10.1.2.3/104": "write it as 10.0.0.0/8",
		"::ffff:0:0/80":       "write ::/80 for the network",
		"fe80::1%eth0/64":     "interface zone",
		"fe80::%eth0/64":      "interface zone",
		"::ffff:10.0.0.1":     "write 10.0.0.1/32",
		"2001:db8::1":         "write 2001:db8::1/128",
		"example.com/8":       "not a network",
	} {
		p, err := ParseCIDR(in)
		got := p.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("ParseCIDR(%q) = %q, want %q in it", in, got, want)
		}
	}
}

// TestConcurrentWritersLoseNothing: 20 writers each add a different account
// to the same user at once; every one of them must be in the result.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	if _, err := s.CreateOrg(ctx, Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	const writers = 20
	accounts := make([]string, writers)
	for i := range accounts {
		a, err := s.CreateAccount(ctx, Account{Org: "acme", Name: fmt.Sprint("a", i)}, operator)
		if err != nil {
			t.Fatal(err)
		}
		accounts[i] = a.ID
	}
	u, err := s.CreateUser(ctx, User{Org: "acme", Type: TypeProgrammatic, Level: LevelOrganization, Role: RoleViewer, Name: "bot"}, nil, operator)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, err := s.UpdateUser(ctx, "acme", u.ID, func(u *User) error {
				u.Accounts = append(u.Accounts, accounts[i])
				return nil
			}, Actor{ID: fmt.Sprint("admin-", i), Type: ActorOperator})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetUser(ctx, "acme", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Accounts)
	slices.Sort(accounts)
	if !slices.Equal(got.Accounts, accounts) {
		t.Fatalf("accounts = %v, want all %d: %v", got.Accounts, writers, accounts)
	}
	events, _, err := s.ListEvents(ctx, "acme", "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, e := range events {
		if e.Action == ActionUserUpdate {
			updates++
		}
	}
	if updates != writers {
		t.Fatalf("%d user.update events, want %d", updates, writers)
	}
}

func TestAccountDelete(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)

	// act1 holds an account-level user and a policy: refused.
	u, _ := f.programmatic(t, nil)
	if err := s.DeleteAccount(ctx, f.org, f.act1, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete account with users: %v", err)
	}
	// act2 is only listed by an organization-level user: it goes, and it
	// leaves the user's accounts in the same change.
	orgUser, _ := f.programmatic(t, func(u *User) {
		u.Level, u.Account, u.Accounts = LevelOrganization, "", []string{f.act1, f.act2}
	})
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, f.org, orgUser.ID)
	if err != nil || !slices.Equal(got.Accounts, []string{f.act1}) {
		t.Fatalf("user after account delete = %+v, %v", got, err)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act2, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Once the user and policy are gone, act1 can go too.
	if err := s.DeleteUser(ctx, f.org, u.ID, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, f.org, f.polAct, nil, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, f.org, f.act1, operator); err != nil {
		t.Fatal(err)
	}
}

func TestPolicies(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	bad := []struct {
		name  string
		p     Policy
		field string
	}{
		{"no name", Policy{Statements: []Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/"}}}}, "name"},
		{"no statements", Policy{Name: "p"}, "statements"},
		{"bad effect", Policy{Name: "p", Statements: []Statement{{Effect: "permit", Methods: []string{"GET"}, Paths: []string{"/"}}}}, "statements[0].effect"},
		{"lowercase method", Policy{Name: "p", Statements: []Statement{{Effect: "allow", Methods: []string{"get"}, Paths: []string{"/"}}}}, "statements[0].methods"},
		{"relative path", Policy{Name: "p", Statements: []Statement{{Effect: "deny", Methods: []string{"*"}, Paths: []string{"api"}}}}, "statements[0].paths"},
		{"unknown account", Policy{Name: "p", Account: "act-00000000", Statements: []Statement{{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/"}}}}, "account"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Org = f.org
			_, err := s.CreatePolicy(ctx, tt.p, operator)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("CreatePolicy = %v, want FieldError on %q", err, tt.field)
			}
		})
	}

	u, _ := f.programmatic(t, func(u *User) { u.Role, u.Policies = RolePolicy, []string{f.polAct} })
	// A policy held by a user cannot be deleted, nor moved to another account.
	if err := s.DeletePolicy(ctx, f.org, f.polAct, nil, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete held policy: %v", err)
	}
	doc := Policy{Name: "moved", Account: f.act2, Statements: []Statement{{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/**"}}}}
	if _, err := s.ReplacePolicy(ctx, f.org, f.polAct, doc, nil, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("move held policy: %v", err)
	}
	doc.Account = f.act1
	p, err := s.ReplacePolicy(ctx, f.org, f.polAct, doc, nil, operator)
	if err != nil || p.Name != "moved" || p.UpdatedAt.IsZero() || p.CreatedAt.IsZero() {
		t.Fatalf("ReplacePolicy = %+v, %v", p, err)
	}
	if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Role, u.Policies = RoleViewer, nil; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, f.org, f.polAct, nil, operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPolicy(ctx, f.org, f.polAct); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted policy: %v", err)
	}
}

// TestPolicyCheckInTransaction: the check given to ReplacePolicy and
// DeletePolicy judges the policy as stored at the transaction's revision:
// its error writes nothing (no change, no audit event), and when another
// writer changes the policy between the transaction's read and its commit,
// the check runs again on what that writer left.
func TestPolicyCheckInTransaction(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	errRefused := errors.New("refused by the check")
	stmts := []Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/**"}}}
	newPolicy := func(t *testing.T) string {
		t.Helper()
		p, err := s.CreatePolicy(ctx, Policy{Org: f.org, Account: f.act1, Name: "act1 only", Statements: stmts}, operator)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	// events counts the audit events about a policy.
	events := func(t *testing.T, id string) int {
		t.Helper()
		evs, _, err := s.ListEvents(ctx, f.org, "", 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Target == id {
				n++
			}
		}
		return n
	}
	// ownedBy is the check an account admin of account makes; it notes the
	// accounts it was shown.
	ownedBy := func(account string, seen *[]string) func(*Policy) error {
		return func(old *Policy) error {
			*seen = append(*seen, old.Account)
			if old.Account != account {
				return errRefused
			}
			return nil
		}
	}
	ops := []struct {
		name string
		do   func(id string, check func(*Policy) error) error
	}{
		{"replace", func(id string, check func(*Policy) error) error {
			_, err := s.ReplacePolicy(ctx, f.org, id, Policy{Name: "replaced", Account: f.act1, Statements: stmts}, check, operator)
			return err
		}},
		{"delete", func(id string, check func(*Policy) error) error {
			return s.DeletePolicy(ctx, f.org, id, check, operator)
		}},
	}
	for _, op := range ops {
		t.Run(op.name+" refused by the check", func(t *testing.T) {
			id := newPolicy(t)
			before := events(t, id)
			var seen []string
			err := op.do(id, ownedBy(f.act2, &seen))
			if !errors.Is(err, errRefused) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want the check's own error", err)
			}
			if !slices.Equal(seen, []string{f.act1}) {
				t.Fatalf("the check saw accounts %v, want the stored %v", seen, f.act1)
			}
			p, err := s.GetPolicy(ctx, f.org, id)
			if err != nil || p.Name != "act1 only" || !p.UpdatedAt.IsZero() {
				t.Fatalf("policy after a refused %s: %+v, %v", op.name, p, err)
			}
			if got := events(t, id) - before; got != 0 {
				t.Fatalf("a refused %s wrote %d audit events", op.name, got)
			}
		})
		t.Run(op.name+" allowed by the check", func(t *testing.T) {
			id := newPolicy(t)
			var seen []string
			if err := op.do(id, ownedBy(f.act1, &seen)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seen, []string{f.act1}) {
				t.Fatalf("the check saw accounts %v", seen)
			}
		})
		t.Run(op.name+" judged again after a concurrent move", func(t *testing.T) {
			id := newPolicy(t)
			before := events(t, id)
			var seen []string
			check := func(old *Policy) error {
				if len(seen) == 0 {
					// Fault injection: another admin moves the policy to
					// act2 after this transaction read it, before it commits.
					moved := Policy{Name: "moved", Account: f.act2, Statements: stmts}
					if _, err := s.ReplacePolicy(ctx, f.org, id, moved, nil, operator); err != nil {
						t.Errorf("concurrent move: %v", err)
					}
				}
				return ownedBy(f.act1, &seen)(old)
			}
			if err := op.do(id, check); !errors.Is(err, errRefused) {
				t.Fatalf("got %v, want the check's error on the moved policy", err)
			}
			if !slices.Equal(seen, []string{f.act1, f.act2}) {
				t.Fatalf("the check saw accounts %v, want %v then %v", seen, f.act1, f.act2)
			}
			p, err := s.GetPolicy(ctx, f.org, id)
			if err != nil || p.Name != "moved" || p.Account != f.act2 {
				t.Fatalf("policy after the refused %s: %+v, %v", op.name, p, err)
			}
			if got := events(t, id) - before; got != 1 {
				t.Fatalf("%d audit events, want only the concurrent move's", got)
			}
		})
	}
}

func TestTokenRotationAndRevocation(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Now = func() time.Time { return now }

	u, first := f.programmatic(t, nil)
	firstRec, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	oldID := firstRec[0].ID

	// Rotate with a one-hour overlap: the old token now expires in an hour.
	_, nt := newToken(t, token.Programmatic)
	nt.Token.Org, nt.Token.User = f.org, u.ID
	if _, err := s.CreateToken(ctx, nt, &Rotation{Replaces: oldID, Overlap: time.Hour}, operator); err != nil {
		t.Fatal(err)
	}
	l, err := s.LookupToken(ctx, token.Sum(first))
	if err != nil || !l.Found || l.Token.ExpiresAt == nil || !l.Token.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("old token after rotation: %+v, %v", l, err)
	}
	if l.Token.Expired(now.Add(59*time.Minute)) || !l.Token.Expired(now.Add(time.Hour)) {
		t.Fatal("old token expiry is not the overlap")
	}

	// Replacing a token that is not the user's is refused.
	_, nt2 := newToken(t, token.Programmatic)
	nt2.Token.Org, nt2.Token.User = f.org, u.ID
	if _, err := s.CreateToken(ctx, nt2, &Rotation{Replaces: "tok-000000000000"}, operator); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotation of unknown token: %v", err)
	}

	// Rotation without overlap removes the old token at once.
	if _, err := s.CreateToken(ctx, nt2, &Rotation{Replaces: oldID}, operator); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LookupToken(ctx, token.Sum(first)); err != nil || l.Found {
		t.Fatalf("old token after immediate rotation: %+v, %v", l, err)
	}

	// Revoke.
	if err := s.RevokeToken(ctx, f.org, u.ID, nt.Token.ID, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, f.org, u.ID, nt.Token.ID, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	toks, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil || len(toks) != 1 || toks[0].ID != nt2.Token.ID {
		t.Fatalf("tokens left = %+v, %v", toks, err)
	}
}

func TestTokenLimit(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil)
	var last string
	for range MaxTokensPerUser - 1 {
		_, nt := newToken(t, token.Programmatic)
		nt.Token.Org, nt.Token.User = f.org, u.ID
		if _, err := s.CreateToken(ctx, nt, nil, operator); err != nil {
			t.Fatal(err)
		}
		last = nt.Token.ID
	}
	_, nt := newToken(t, token.Programmatic)
	nt.Token.Org, nt.Token.User = f.org, u.ID
	if _, err := s.CreateToken(ctx, nt, nil, operator); !errors.Is(err, ErrConflict) {
		t.Fatalf("token over the limit: %v", err)
	}
	// Rotation at the limit still works, and deleting the user (one
	// transaction holding every token) still fits etcd's default limits.
	if _, err := s.CreateToken(ctx, nt, &Rotation{Replaces: last, Overlap: time.Minute}, operator); err != nil {
		t.Fatalf("rotation at the limit: %v", err)
	}
	if err := s.DeleteUser(ctx, f.org, u.ID, operator); err != nil {
		t.Fatal(err)
	}
}

// TestOnlyDigestsAtRest scans every key and value in etcd for any trace of
// the secrets handed out.
func TestOnlyDigestsAtRest(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	var secrets []string
	for range 3 {
		u, secret := f.programmatic(t, nil)
		secrets = append(secrets, secret)
		s2, nt := newToken(t, token.Programmatic)
		nt.Token.Org, nt.Token.User = f.org, u.ID
		if _, err := s.CreateToken(ctx, nt, nil, operator); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s2)
	}
	resp, err := s.Client().Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		for _, secret := range secrets {
			body := secret[4:44] // the random part alone
			if strings.Contains(string(kv.Key), body) || strings.Contains(string(kv.Value), body) {
				t.Fatalf("secret found at rest in %s", kv.Key)
			}
		}
	}
}

func TestAuditEveryChange(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s) // org, 2 accounts, 2 policies
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil)
	_, nt := newToken(t, token.Programmatic)
	nt.Token.Org, nt.Token.User = f.org, u.ID
	if _, err := s.CreateToken(ctx, nt, nil, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, f.org, u.ID, nt.Token.ID, operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Disabled = true; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, f.org, u.ID, operator); err != nil {
		t.Fatal(err)
	}
	// A refused change writes nothing.
	if err := s.DeleteUser(ctx, f.org, u.ID, operator); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	want := []string{ActionUserDelete, ActionUserUpdate, ActionTokenRevoke, ActionTokenCreate, ActionUserCreate,
		ActionPolicyCreate, ActionPolicyCreate, ActionAccountCreate, ActionAccountCreate, ActionOrgCreate}
	var got []string
	cursor := ""
	for {
		page, next, err := s.ListEvents(ctx, f.org, "", 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			got = append(got, e.Action)
			if e.Actor != operator || e.Org != f.org || e.Target == "" || e.Time.IsZero() {
				t.Fatalf("event %+v", e)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events newest first:\n got %v\nwant %v", got, want)
	}
	if _, _, err := s.ListEvents(ctx, f.org, "", 3, "garbage"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestListUsersPagingStableUnderInserts: paging through users while others
// are being created never repeats or skips a user that existed before.
func TestListUsersPagingStableUnderInserts(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	before := map[string]bool{}
	for range 25 {
		u, _ := f.programmatic(t, nil)
		before[u.ID] = true
	}
	seen := map[string]bool{}
	cursor := ""
	for {
		page, next, err := s.ListUsers(ctx, f.org, UserFilter{}, 4, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page {
			if seen[u.ID] {
				t.Fatalf("user %s listed twice", u.ID)
			}
			seen[u.ID] = true
		}
		f.programmatic(t, nil) // an insert between pages
		if next == "" {
			break
		}
		cursor = next
	}
	for id := range before {
		if !seen[id] {
			t.Fatalf("user %s skipped", id)
		}
	}
	// Filters.
	f.programmatic(t, func(u *User) { u.Account = f.act2 })
	page, _, err := s.ListUsers(ctx, f.org, UserFilter{Account: f.act2}, 100, "")
	if err != nil || len(page) != 1 {
		t.Fatalf("filter by account: %d users, %v", len(page), err)
	}
	page, _, err = s.ListUsers(ctx, f.org, UserFilter{Type: TypeUI}, 100, "")
	if err != nil || len(page) != 0 {
		t.Fatalf("filter by type: %d users, %v", len(page), err)
	}
}

func TestLookupToken(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, secret := f.programmatic(t, func(u *User) { u.Role, u.Policies = RolePolicy, []string{f.polOrg, f.polAct} })
	before := s.Stats()
	l, err := s.LookupToken(ctx, token.Sum(secret))
	if err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	if after.Lookups-before.Lookups != 1 || after.RangeRPCs-before.RangeRPCs != 3 {
		t.Fatalf("lookup cost %+v", after)
	}
	if !l.Found || l.User.ID != u.ID || len(l.Policies) != 2 || !slices.Equal(l.Accounts, []string{f.act1}) {
		t.Fatalf("lookup = %+v", l)
	}
	// Keys: digest, record, user, 2 policies, 1 account.
	if len(l.Keys) != 6 {
		t.Fatalf("keys = %v", l.Keys)
	}
	unknown, _ := newToken(t, token.Programmatic)
	l, err = s.LookupToken(ctx, token.Sum(unknown))
	if err != nil || l.Found || len(l.Keys) != 1 || l.Revision == 0 {
		t.Fatalf("unknown lookup = %+v, %v", l, err)
	}
}

func TestUnavailable(t *testing.T) {
	s, srv := newStore(t)
	f := newFixture(t, s)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.GetOrg(ctx, f.org); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetOrg with etcd down: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := s.CreateAccount(ctx2, Account{Org: f.org, Name: "x"}, operator); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CreateAccount with etcd down: %v", err)
	}
}
