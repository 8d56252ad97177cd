package verify

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unique"

	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// Identity is what a verified token says about its holder. It is shared
// between requests and must not be modified.
type Identity struct {
	TokenID  string
	UserID   string
	UserName string
	// Type is store.TypeProgrammatic or store.TypeUI.
	Type  string
	Org   string
	Level string
	Role  string
	// Account is an account-level user's own account; empty for
	// organization-level users.
	Account string
	// Accounts are the accounts the user reaches that exist, sorted.
	Accounts []string
	// Policies are the IDs of the user's existing policies (role "policy").
	Policies []string
	// Rules is the compiled union of those policies' statements.
	Rules *policy.Set
	// Statements name the statements Rules was compiled from, in order:
	// "<policy id>#<index in the policy>".
	Statements []string
	// Proposed are the user's rights under trial (report-only), as an
	// identity of the same user and token; nil: none.
	Proposed *Identity
	// ExpiresAt is when the token stops working; zero for never.
	ExpiresAt time.Time
	// AllowedPrefixes are the networks of the user's allowed_cidrs. Only
	// meaningful when RestrictsIP: see AdmitsIP.
	AllowedPrefixes []netip.Prefix
	// Limit is the user's rate_limit; nil: none.
	Limit *Limit

	disabled     bool
	ipRestricted bool         // the user has allowed_cidrs, parsed or not
	lastUse      atomic.Int64 // unix seconds this token's use was last noted
	lastClient   atomic.Int64 // unix seconds its client was last noted
}

// Limit is a user's budget: Requests per Window, one budget for the user
// across every gateway sharing the cluster.
type Limit struct {
	Requests int64
	Window   time.Duration
}

// RestrictsIP reports whether the user may use its tokens only from the
// networks of its allowed_cidrs.
func (id *Identity) RestrictsIP() bool { return id.ipRestricted }

// AdmitsIP reports whether a request from addr may use the identity: always
// when the user has no allowed_cidrs, else when one of its networks holds
// addr. An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is the IPv4 client it
// stands for. An invalid addr (Caddy knew no client address) is admitted only
// where there is no list.
func (id *Identity) AdmitsIP(addr netip.Addr) bool {
	if !id.ipRestricted {
		return true
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range id.AllowedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Reaches reports whether the identity may act on the given account.
func (id *Identity) Reaches(account string) bool {
	_, found := slices.BinarySearch(id.Accounts, account)
	return found
}

// Errors of Verify. Test with errors.Is.
var (
	// ErrMalformed: the token fails the offline checks (length, prefix,
	// characters, checksum). Nothing was looked up.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknown: well formed, but no such token (never issued, revoked,
	// or its user deleted).
	ErrUnknown = errors.New("unknown token")
	// ErrExpired: the token existed but its expiry has passed.
	ErrExpired = errors.New("expired token")
	// ErrDisabled: the token's user is disabled.
	ErrDisabled = errors.New("user disabled")
	// ErrUnavailable: the store cannot be reached and nothing cached may
	// answer for it. It is the store's own sentinel.
	ErrUnavailable = store.ErrUnavailable
)

// intern returns the one copy of s that identities share (package unique:
// a copy no identity holds any more is collected).
func intern(s string) string { return unique.Make(s).Value() }

func internAll(list []string) []string {
	for i, s := range list {
		list[i] = intern(s)
	}
	return list
}

// rightsOf builds what u may reach — its organization, level, role, the
// accounts and policies of l it names — as an identity without its token.
// The strings many identities share (an organization, its accounts,
// roles, policies) are kept once.
func rightsOf(u *store.User, l *store.Lookup) *Identity {
	id := &Identity{Org: intern(u.Org), Level: intern(u.Level), Role: intern(u.Role)}
	var reached []string
	for _, a := range l.Accounts {
		if u.Level == store.LevelAccount && a == u.Account || u.Level != store.LevelAccount && slices.Contains(u.Accounts, a) {
			reached = append(reached, a)
		}
	}
	id.Accounts = internAll(slices.Sorted(slices.Values(reached)))
	var stmts []policy.Statement
	for _, p := range l.Policies {
		if !slices.Contains(u.Policies, p.ID) {
			continue
		}
		id.Policies = append(id.Policies, intern(p.ID))
		stmts = append(stmts, p.Statements...)
		if u.Role == store.RolePolicy {
			for i := range p.Statements {
				id.Statements = append(id.Statements, intern(p.ID+"#"+strconv.Itoa(i)))
			}
		}
	}
	if u.Role == store.RolePolicy {
		id.Rules = policy.Compile(stmts)
	}
	if u.Level == store.LevelAccount {
		id.Account = intern(u.Account)
	}
	return id
}

// identityFrom builds the identity a lookup describes, or nil when the
// token is unknown.
func identityFrom(l *store.Lookup, kind token.Kind) *Identity {
	if !l.Found {
		return nil
	}
	u, t := &l.User, &l.Token
	// A token's prefix says which type of user it was issued to; a mismatch
	// means the data is not what was issued, so the token is not honoured.
	if (kind == token.Programmatic) != (u.Type == store.TypeProgrammatic) {
		return nil
	}
	id := rightsOf(u, l)
	id.TokenID, id.UserID, id.UserName, id.Type = t.ID, u.ID, u.Name, intern(u.Type)
	id.disabled = u.Disabled
	if shadow := u.WithProposed(); shadow != nil {
		p := rightsOf(shadow, l)
		p.TokenID, p.UserID, p.UserName, p.Type = id.TokenID, id.UserID, id.UserName, id.Type
		id.Proposed = p
	}
	if t.ExpiresAt != nil {
		id.ExpiresAt = *t.ExpiresAt
	}
	if r := u.RateLimit; r != nil {
		// A window that does not parse (written past the admin API) is
		// the shortest: the budget stays a budget.
		id.Limit = &Limit{Requests: max(r.Requests, 1), Window: max(r.WindowDuration(), store.MinRateWindow)}
	}
	// An entry that does not parse (written past the admin API) admits
	// nobody: the list still restricts, so a damaged list fails closed.
	if len(u.AllowedCIDRs) > 0 {
		id.ipRestricted = true
		for _, s := range u.AllowedCIDRs {
			if p, err := store.ParseCIDR(s); err == nil {
				id.AllowedPrefixes = append(id.AllowedPrefixes, p)
			}
		}
	}
	return id
}
