package admin

import (
	"github.com/tokengate/tokengate/module/store"
)

// Who may do what, through tokengate_admin:
//
//   - the operator (Caddy's admin endpoint) may do everything, and alone may
//     create organizations;
//   - an organization-level admin (UI or programmatic) manages everything in
//     its own organization, except that programmatic admins cannot create
//     UI users' personal tokens (mayCreateToken);
//   - an account-level admin manages only account-level users and policies of
//     its own account, reads its account, the organization and its
//     organization-wide policies, and can grant nothing beyond its account;
//   - a UI user may create, list and revoke its own personal tokens, and
//     nothing else (self-service; see mayCreateToken);
//   - everyone else is refused.

// scope is what a caller may manage in one organization.
type scope struct {
	// account is set for account-level admins: the one account they manage.
	account string
}

// orgWide reports whether the scope covers the whole organization.
func (s scope) orgWide() bool { return s.account == "" }

// admin checks that the caller administers org and returns its scope.
func (c *call) admin(org string) (scope, error) {
	if c.caller.Operator {
		return scope{}, nil
	}
	id := c.caller.Identity
	if id == nil || id.Role != store.RoleAdmin {
		return scope{}, forbidden("only admins may use the admin API")
	}
	if id.Org != org {
		return scope{}, forbidden("admins manage only their own organization")
	}
	if id.Level == store.LevelAccount {
		if !id.Reaches(id.Account) {
			return scope{}, forbidden("the admin's account no longer exists")
		}
		return scope{account: id.Account}, nil
	}
	return scope{}, nil
}

// orgOnly refuses account-level admins.
func (s scope) orgOnly(what string) error {
	if !s.orgWide() {
		return forbidden("account-level admins cannot " + what)
	}
	return nil
}

// managesUser reports whether the scope covers a user: account admins
// manage the account-level users of their account, nobody else.
func (s scope) managesUser(u *store.User) bool {
	return s.orgWide() || u.Level == store.LevelAccount && u.Account == s.account
}

// readsPolicy: account admins read their account's and organization-wide
// policies.
func (s scope) readsPolicy(p *store.Policy) bool {
	return s.orgWide() || p.Account == "" || p.Account == s.account
}

// managesPolicy: account admins change only their account's policies.
func (s scope) managesPolicy(p *store.Policy) bool {
	return s.orgWide() || p.Account == s.account
}

// Grants. An account admin may grant only its account's and
// organization-wide policies, yet nothing here reads the policies it
// grants: the store's policiesFit refuses, inside the transaction that
// writes the user, every policy scoped to an account other than the
// user's (400 invalid_request on policies), and an account admin's users
// are always account-level users of its own account (createUser checks the
// new user's account; patchUser's change checks managesUser on the user as
// stored, and level and account never change). A check made here, before
// that transaction, would judge policies that may have moved meanwhile.

// isUser reports whether the caller is the UI user u itself, signed in
// with one of its own personal tokens.
func (c Caller) isUser(u *store.User) bool {
	id := c.Identity
	return id != nil && id.Type == store.TypeUI && u.Type == store.TypeUI && id.Org == u.Org && id.UserID == u.ID
}

// mayCreateToken is the one rule for who may create a token of user u, on
// either mount and under console/api/ alike; createToken calls it for every
// request:
//
//   - a programmatic user's token (tgp_): the operator, or an admin (UI or
//     programmatic) who manages the user;
//   - a UI user's personal token (tgu_): the operator, the UI user itself
//     (whatever its role), or a UI admin who manages the user.
//     Programmatic callers are refused whatever their role: a personal
//     token opens the UI and the console, where no programmatic credential
//     may lead.
//
// It judges the user's type, level and account, which never change after
// the user is created, so the user read before the store's transaction is
// the user the token is written for (or the store answers 404).
func (c *call) mayCreateToken(u *store.User) error {
	if c.caller.Operator || c.caller.isUser(u) {
		return nil
	}
	sc, err := c.admin(u.Org)
	if err != nil {
		return err
	}
	if !sc.managesUser(u) {
		return forbidden("account-level admins manage only account-level users of their own account")
	}
	if u.Type == store.TypeUI && c.caller.Identity.Type != store.TypeUI {
		return forbidden("programmatic callers cannot create a UI user's personal tokens: only the operator, the user itself or a UI admin can")
	}
	return nil
}

// tokenUser reads the user whose tokens the request is about and checks
// that the caller may see and revoke them: an admin who manages the user
// (c.user), or the UI user itself (self-service). Creating a token is
// further judged by mayCreateToken.
func (c *call) tokenUser() (*store.User, error) {
	org, user := c.params["org"], c.params["user"]
	if id := c.caller.Identity; id != nil && id.Type == store.TypeUI && id.Org == org && id.UserID == user {
		u, err := c.api.store.GetUser(c.r.Context(), org, user)
		if err != nil {
			return nil, err
		}
		if !c.caller.isUser(u) {
			return nil, forbidden("only admins may use the admin API")
		}
		return u, nil
	}
	u, _, err := c.user()
	return u, err
}
