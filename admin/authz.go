package admin

import (
	"fmt"
	"slices"
	"strings"
	"time"

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
//   - everyone else is refused;
//   - and an admin with a rate_limit or allowed_cidrs passes on no more than
//     it has (see Inheritance).

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

// Inheritance. An admin with a rate_limit or allowed_cidrs (the operator
// has neither) gives no user more than it has itself, or a limited admin
// would create an unlimited one and have it lift the first one's limits:
//
//   - a rate_limit it gives must be one its own would lower to (see lowers:
//     no more requests per window, nor over time; none is no limit, above
//     every limit);
//   - allowed_cidrs it gives must lie within its own networks (every
//     network within one of its own; none is anywhere, within nothing).
//
// This binds the users it creates (mayCreate), the rate_limit and
// allowed_cidrs it sets on a user, every grant it makes to a user
// (mayChange) and the tokens it takes of a user (mayCreateToken), since a
// token carries its user's limits. A grant is a change of role, level,
// account, accounts or policies: it makes the user an admin who could lift
// the caller's limits, or widens what the user reaches, so the user as
// written must lie within the caller's limits in full, as a new user must.
// Any change of those fields counts, a demotion included (disabling a user
// is not a grant). A PATCH that changes none of them and leaves both limit
// fields as they are may change a user beyond the caller's limits (rename
// it, disable it): limited admins still manage users created before them.
//
// The caller's role and accounts bound its grants as they bound a
// creation: an admin grants at most the admin role; an account-level admin
// grants only its own account and the policies that fit it (see Grants);
// an organization-level admin manages every account of its organization,
// whatever its own accounts.
//
// Each check runs inside the store's transaction that writes, on the user
// read there (mayChange, mayCreateToken) or about to be written
// (mayCreate), so a concurrent change to the user's limits is judged as it
// is written. The caller's own limits are those of the identity its
// request was admitted with, as its role and level are.

// limitsExceeded says how the limits of u go beyond the caller's, for the
// fields asked: the caller's limit ("an admin limited to 10 per 1m") and
// the field of u beyond it; "" when none is. u is as the store keeps it
// (validated).
func (c Caller) limitsExceeded(u *store.User, cidrs, rateLimit bool) (limited, why string) {
	id := c.Identity
	if c.Operator || id == nil {
		return "", ""
	}
	if rateLimit && id.Limit != nil {
		own := &store.RateLimit{Requests: id.Limit.Requests, Window: id.Limit.Window.String()}
		if !lowers(own, u.RateLimit) {
			given := "none (no limit at all)"
			if u.RateLimit != nil {
				given = rateText(u.RateLimit.Requests, u.RateLimit.WindowDuration())
			}
			return "an admin limited to " + rateText(id.Limit.Requests, id.Limit.Window),
				"rate_limit " + given + " is above that (no more requests per window, nor over time)"
		}
	}
	if cidrs && id.RestrictsIP() {
		if n := outside(id.AllowedPrefixes, u.AllowedCIDRs); n != "" {
			var own []string
			for _, p := range id.AllowedPrefixes {
				own = append(own, p.String())
			}
			if len(own) > 4 {
				own = append(own[:4], fmt.Sprintf("… (%d networks)", len(id.AllowedPrefixes)))
			}
			if len(own) == 0 {
				own = []string{"no network that parses"}
			}
			given := n
			if len(u.AllowedCIDRs) == 0 {
				given = "none (anywhere)"
			}
			return "an admin limited to allowed_cidrs " + strings.Join(own, ", "),
				"allowed_cidrs " + given + " is not within those networks"
		}
	}
	return "", ""
}

// grantRefused is the answer to a caller giving a user more than it has.
func grantRefused(limited, why string) error {
	return forbidden(limited + " cannot grant more: " + why)
}

// rateText writes a rate as "10 per 1m", the window in its largest whole
// unit as the store writes it.
func rateText(requests int64, window time.Duration) string {
	w := window.String()
	for _, unit := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if window > 0 && window%unit.d == 0 {
			w = fmt.Sprintf("%d%s", window/unit.d, unit.name)
			break
		}
	}
	return fmt.Sprintf("%d per %s", requests, w)
}

// mayCreate checks the limits of a user the caller creates, as the store
// will keep them: the store runs it inside the transaction that writes, on
// the validated user. The caller's limits are its identity's, the user's
// are the request's.
func (c Caller) mayCreate(u *store.User) error {
	if limited, why := c.limitsExceeded(u, true, true); why != "" {
		return grantRefused(limited, why)
	}
	return nil
}

// mayChange checks a change of the user prev into next, inside the store's
// transaction that writes next, on prev as read there; cidrs and rateLimit
// say whether the request sets allowed_cidrs and rate_limit:
//
//   - an admin may only narrow its own allowed_cidrs and lower its own
//     rate_limit (a stolen admin token must not lift its own limits, nor
//     buy itself more requests or a bigger burst): another admin or the
//     operator may widen, raise or remove them;
//   - a grant (see grants) leaves the user within the caller's limits in
//     full, as a creation does (Inheritance);
//   - a limit it sets on anyone must be within its own, unless it leaves
//     the field as it was.
//
// next is judged as the store will keep it, once the store's own rules
// pass (a bad value is a 400, not a 403).
func (c Caller) mayChange(prev, next *store.User, cidrs, rateLimit bool) error {
	if c.Operator {
		return nil
	}
	checked := *next
	if err := store.ValidateUser(&checked); err != nil {
		return err
	}
	if c.Identity != nil && c.Identity.UserID == prev.ID {
		if cidrs && !narrows(prev.AllowedCIDRs, checked.AllowedCIDRs) {
			return forbidden("an admin can only narrow its own allowed_cidrs; another admin or the operator can widen them")
		}
		if rateLimit && !lowers(prev.RateLimit, checked.RateLimit) {
			return forbidden("an admin can only lower its own rate_limit; another admin or the operator can raise or remove it")
		}
	}
	if grants(prev, &checked) {
		cidrs, rateLimit = true, true
	} else {
		cidrs = cidrs && !slices.Equal(checked.AllowedCIDRs, prev.AllowedCIDRs)
		rateLimit = rateLimit && !sameRateLimit(checked.RateLimit, prev.RateLimit)
	}
	if limited, why := c.limitsExceeded(&checked, cidrs, rateLimit); why != "" {
		return grantRefused(limited, why)
	}
	return nil
}

// mayRewritePolicy checks, inside the transaction that replaces a policy,
// the users holding it: a new document may give each of them more, so an
// admin with a rate_limit or allowed_cidrs may rewrite only policies whose
// holders are all within its own limits (Inheritance).
func (c Caller) mayRewritePolicy(holders []store.User) error {
	for i := range holders {
		if limited, why := c.limitsExceeded(&holders[i], true, true); why != "" {
			return forbidden(limited + " cannot grant more: the policy is held by user " + holders[i].ID +
				", whose " + why + "; the operator or an admin without that limit can change it")
		}
	}
	return nil
}

// grants reports whether changing prev into next grants anything: a change
// of role, level, account, accounts or policies (lists compared as sets),
// or enabling a disabled user (its tokens work again with all it holds).
func grants(prev, next *store.User) bool {
	return prev.Role != next.Role || prev.Level != next.Level || prev.Account != next.Account ||
		!sameSet(prev.Accounts, next.Accounts) || !sameSet(prev.Policies, next.Policies) ||
		prev.Disabled && !next.Disabled
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func sameRateLimit(a, b *store.RateLimit) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

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
// createToken runs it twice: on the user read before the request's body is
// decoded, to refuse early, and inside the store's transaction that writes
// the token, on the user read there. The second judges the user's limits
// against a limited caller's (Inheritance) as they are when the token is
// written, whatever another admin changed meanwhile.
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
	if c.caller.Identity.UserID != u.ID {
		if limited, why := c.caller.limitsExceeded(u, true, true); why != "" {
			return forbidden(limited + " cannot take a token of a user with more: its " + why + "; the operator or an admin without that limit can")
		}
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
