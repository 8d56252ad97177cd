package admin

import (
	"errors"

	"github.com/tokengate/tokengate/module/store"
)

// Who may do what, through tokengate_admin:
//
//   - the operator (Caddy's admin endpoint) may do everything, and alone may
//     create organizations;
//   - an organization-level admin (UI or programmatic) manages everything in
//     its own organization;
//   - an account-level admin manages only account-level users and policies of
//     its own account, reads its account, the organization and its
//     organization-wide policies, and can grant nothing beyond its account;
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

// mayGrant checks, for account admins, that every policy to be granted is
// readable to them: their account's or organization-wide. (The store checks
// that the policies exist and fit the user's account.)
func (c *call) mayGrant(s scope, org string, policies []string) error {
	if s.orgWide() {
		return nil
	}
	for _, id := range policies {
		p, err := c.api.store.GetPolicy(c.r.Context(), org, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // the store answers this with invalid_request
		}
		if err != nil {
			return err
		}
		if !s.readsPolicy(p) {
			return forbidden("policy " + id + " belongs to another account")
		}
	}
	return nil
}
