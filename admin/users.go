package admin

import (
	"math/bits"
	"net/http"
	"net/netip"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// POST /orgs/{org}/users: a programmatic user comes with its first token,
// whose secret is in this answer and never again.
func createUser(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	in := store.User{Org: org}
	err = c.decode(fields{
		"type": &in.Type, "level": &in.Level, "account": &in.Account, "accounts": &in.Accounts,
		"role": &in.Role, "policies": &in.Policies, "name": &in.Name, "description": &in.Description,
		"email": &in.Email, "allowed_cidrs": &in.AllowedCIDRs, "rate_limit": orNull{&in.RateLimit},
	}, "type", "level", "role", "name")
	if err != nil {
		return err
	}
	if !sc.orgWide() {
		if in.Level != store.LevelAccount {
			return forbidden("account-level admins create only account-level users")
		}
		if in.Account == "" {
			in.Account = sc.account
		}
		if in.Account != sc.account {
			return forbidden("account-level admins create users of their own account only")
		}
		// The policies granted need no check here: see grants in authz.go.
	}
	var first *store.NewToken
	var secret string
	if in.Type == store.TypeProgrammatic {
		if secret, first, err = newToken(token.Programmatic, "initial"); err != nil {
			return err
		}
	}
	// The limits of the user are judged inside the store's transaction,
	// on the user as it will be written: see mayCreate.
	u, err := c.api.store.CreateUserChecked(c.r.Context(), in, first, c.caller.mayCreate, c.caller.Actor())
	if err != nil {
		return err
	}
	out := struct {
		User  userView      `json:"user"`
		Token *newTokenView `json:"token,omitempty"`
	}{User: viewUser(u)}
	if first != nil {
		t := viewNewToken(&first.Token, secret)
		out.Token = &t
	}
	return c.changed(http.StatusCreated, store.ActionUserCreate, u.ID, out)
}

// newToken generates a secret and the record the store keeps of it.
func newToken(kind token.Kind, name string) (string, *store.NewToken, error) {
	secret, err := token.Generate(kind)
	if err != nil {
		return "", nil, err
	}
	return secret, &store.NewToken{
		Hash:  token.Sum(secret),
		Token: store.Token{ID: store.NewTokenID(), Name: name, Hint: token.Hint(secret)},
	}, nil
}

// GET /orgs/{org}/users?type=&account=&limit=&cursor=
func listUsers(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	q, err := query(c.r.URL, "type", "account", "limit", "cursor")
	if err != nil {
		return err
	}
	f := store.UserFilter{Type: q["type"], Account: q["account"]}
	if f.Type != "" && f.Type != store.TypeUI && f.Type != store.TypeProgrammatic {
		return invalid("type", `must be "ui" or "programmatic"`)
	}
	if f.Account != "" && !store.ValidAccountID(f.Account) {
		return invalid("account", "must look like act-1a2b3c4d")
	}
	if !sc.orgWide() {
		if f.Account != "" && f.Account != sc.account {
			return forbidden("account-level admins list only their own account's users")
		}
		f.Account, f.Level = sc.account, store.LevelAccount
	}
	limit, cursor, err := page(q)
	if err != nil {
		return err
	}
	users, next, err := c.api.store.ListUsers(c.r.Context(), org, f, limit, cursor)
	if err != nil {
		return err
	}
	out := struct {
		Users      []userView `json:"users"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Users: []userView{}, NextCursor: encodeCursor(next)}
	for i := range users {
		out.Users = append(out.Users, viewUser(&users[i]))
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// user reads the user of the request's path and checks the caller manages
// it.
func (c *call) user() (*store.User, scope, error) {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return nil, sc, err
	}
	u, err := c.api.store.GetUser(c.r.Context(), org, c.params["user"])
	if err != nil {
		return nil, sc, err
	}
	if !sc.managesUser(u) {
		return nil, sc, forbidden("account-level admins manage only account-level users of their own account")
	}
	return u, sc, nil
}

// GET /orgs/{org}/users/{user}
func getUser(c *call) error {
	u, _, err := c.user()
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, viewUser(u))
	return nil
}

// PATCH /orgs/{org}/users/{user}: name, description, role, accounts,
// policies, allowed_cidrs, rate_limit (null removes it), disabled, proposed
// (rights tried in report-only mode; null ends the trial). Moving a
// user off the policy role drops its policies.
func patchUser(c *call) error {
	_, sc, err := c.user()
	if err != nil {
		return err
	}
	var in store.User
	present, err := c.decodePresent(fields{
		"name": &in.Name, "description": &in.Description, "role": &in.Role,
		"accounts": &in.Accounts, "policies": &in.Policies, "allowed_cidrs": &in.AllowedCIDRs,
		"rate_limit": orNull{&in.RateLimit}, "disabled": &in.Disabled, "proposed": orNull{&in.Proposed},
	})
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return invalid("body", "names nothing to change")
	}
	// The policies granted need no check here: see grants in authz.go.
	u, err := c.api.store.UpdateUser(c.r.Context(), c.params["org"], c.params["user"], func(u *store.User) error {
		if !sc.managesUser(u) {
			return forbidden("account-level admins manage only account-level users of their own account")
		}
		prev := *u
		if present["name"] {
			u.Name = in.Name
		}
		if present["description"] {
			u.Description = in.Description
		}
		if present["role"] {
			u.Role = in.Role
			if in.Role != store.RolePolicy && !present["policies"] {
				u.Policies = nil
			}
		}
		if present["accounts"] {
			u.Accounts = in.Accounts
		}
		if present["policies"] {
			u.Policies = in.Policies
		}
		if present["allowed_cidrs"] {
			u.AllowedCIDRs = in.AllowedCIDRs
		}
		if present["rate_limit"] {
			u.RateLimit = in.RateLimit
		}
		if present["disabled"] {
			u.Disabled = in.Disabled
		}
		if present["proposed"] {
			u.Proposed = in.Proposed
		}
		// Judged here, on the user read in the transaction that writes
		// it: see mayChange.
		return c.caller.mayChange(&prev, u, present["allowed_cidrs"], present["rate_limit"])
	}, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusOK, store.ActionUserUpdate, u.ID, viewUser(u))
}

// narrows reports whether every network of next lies within one of prev
// (an empty list is everywhere). Entries of prev that do not parse
// (written past the admin API) hold nothing.
func narrows(prev, next []string) bool {
	if len(prev) == 0 {
		return true
	}
	var nets []netip.Prefix
	for _, o := range prev {
		if op, err := store.ParseCIDR(o); err == nil {
			nets = append(nets, op)
		}
	}
	return outside(nets, next) == ""
}

// outside returns a network of next that lies within none of nets, "" when
// there is none: "anywhere" when next is empty, which is everywhere. An
// entry of next that does not parse is left to the store's validation,
// which refuses it.
func outside(nets []netip.Prefix, next []string) string {
	if len(next) == 0 {
		return "anywhere"
	}
	for _, n := range next {
		np, err := store.ParseCIDR(n)
		if err != nil {
			continue
		}
		within := false
		for _, op := range nets {
			if op.Bits() <= np.Bits() && op.Contains(np.Addr()) {
				within = true
				break
			}
		}
		if !within {
			return n
		}
	}
	return ""
}

// lowers reports whether the rate limit next is no higher than prev (nil
// is no limit, the highest). Lower means both:
//
//   - requests/window does not increase: no more requests over a long run
//     (100/1m → 100/2m, 50/1m or 1/1s);
//   - requests does not increase: no bigger burst in one window, which
//     the ratio alone would allow (100/1m → 1000/10m keeps the ratio but
//     lets 1000 requests through at once).
//
// next is meant to have passed the store's validation; a value that is no
// limit at all (no requests, no window) is not lower than anything. prev
// is read as the gateway enforces it (see verify's identityFrom), so a
// damaged stored value is judged by the limit actually applied.
func lowers(prev, next *store.RateLimit) bool {
	if next == nil {
		return prev == nil
	}
	nextWindow := next.WindowDuration()
	if next.Requests < 1 || nextWindow <= 0 {
		return false
	}
	if prev == nil {
		return true
	}
	prevRequests, prevWindow := max(prev.Requests, 1), max(prev.WindowDuration(), store.MinRateWindow)
	if next.Requests > prevRequests {
		return false
	}
	// next.Requests/nextWindow <= prevRequests/prevWindow, cross-multiplied
	// in 128 bits, so that no value, damaged or not, overflows.
	nh, nl := bits.Mul64(uint64(next.Requests), uint64(prevWindow))
	ph, pl := bits.Mul64(uint64(prevRequests), uint64(nextWindow))
	return nh < ph || nh == ph && nl <= pl
}

// DELETE /orgs/{org}/users/{user}: the user and all its tokens, at once.
func deleteUser(c *call) error {
	u, _, err := c.user()
	if err != nil {
		return err
	}
	if err := c.api.store.DeleteUser(c.r.Context(), u.Org, u.ID, c.caller.Actor()); err != nil {
		return err
	}
	return c.changed(http.StatusNoContent, store.ActionUserDelete, u.ID, nil)
}
