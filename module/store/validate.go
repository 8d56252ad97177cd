package store

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokengate/tokengate/module/policy"
)

// Limits on what a user or policy may hold. They keep every record, and
// every transaction that rewrites records, well inside etcd's limits.
const (
	MaxNameLen        = 128
	MaxDescriptionLen = 1024
	MaxEmailLen       = 254
	MaxAccountsOfUser = 100
	MaxPoliciesOfUser = 20
	MaxCIDRsOfUser    = 100
	MaxStatements     = 100
	MaxStatementItems = 50
	MaxPathLen        = 1024
	// MaxTokensPerUser bounds the live tokens of one user, so that deleting
	// the user stays one transaction.
	MaxTokensPerUser = 50
)

var methodPattern = regexp.MustCompile(`^[A-Z]{1,20}$`)

// checkName and checkDescription are checkText with the limits of names
// and descriptions.
func checkName(field, v string, required bool) error {
	return checkText(field, v, MaxNameLen, required)
}

func checkDescription(v string) error { return checkText("description", v, MaxDescriptionLen, false) }

// isControl is for text that is not free text (paths, URLs): it refuses
// ASCII control characters; free text is checkText's.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ValidateUser checks the rules every stored user obeys: the fields that go
// with its type, level and role, and its allowed_cidrs, which it rewrites in
// canonical form (a new slice). It does not check that the accounts and
// policies it names exist; the store does that inside the transaction.
func ValidateUser(u *User) error {
	switch u.Type {
	case TypeUI, TypeProgrammatic:
	case "":
		return &FieldError{"type", "is required"}
	default:
		return &FieldError{"type", `must be "ui" or "programmatic"`}
	}
	if err := checkName("name", u.Name, true); err != nil {
		return err
	}
	if err := checkDescription(u.Description); err != nil {
		return err
	}
	if err := checkEmail(u); err != nil {
		return err
	}
	if err := checkLevelAndRole(u); err != nil {
		return err
	}
	if err := checkPolicies(u); err != nil {
		return err
	}
	if shadow := u.WithProposed(); shadow != nil {
		for _, check := range []func(*User) error{checkLevelAndRole, checkPolicies} {
			if err := check(shadow); err != nil {
				return proposedField(err)
			}
		}
	}
	return canonicalLimits(u)
}

// proposedField names a field of the proposed rights in an error about
// it: "proposed.role".
func proposedField(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{"proposed." + fe.Field, fe.Message}
	}
	return err
}

// checkEmail: a UI user has a plain address, a programmatic user none.
func checkEmail(u *User) error {
	if u.Type != TypeUI {
		if u.Email != "" {
			return &FieldError{"email", "is only for UI users"}
		}
		return nil
	}
	if u.Email == "" {
		return &FieldError{"email", "is required for UI users"}
	}
	if len(u.Email) > MaxEmailLen {
		return &FieldError{"email", "is too long"}
	}
	if err := checkText("email", u.Email, MaxEmailLen, true); err != nil {
		return err
	}
	addr, err := mail.ParseAddress(u.Email)
	if err != nil || addr.Address != u.Email || addr.Name != "" {
		return &FieldError{"email", "must be a plain address such as ana@example.com"}
	}
	return nil
}

// checkLevelAndRole: an account-level user has one account and any role;
// an organization-level user lists accounts and has no policy role.
func checkLevelAndRole(u *User) error {
	switch u.Level {
	case LevelAccount:
		if u.Account == "" {
			return &FieldError{"account", "is required for account-level users"}
		}
		if !ValidAccountID(u.Account) {
			return &FieldError{"account", "must look like act-1a2b3c4d"}
		}
		if len(u.Accounts) > 0 {
			return &FieldError{"accounts", "is for organization-level users; account-level users have one account"}
		}
		switch u.Role {
		case RoleViewer, RoleEditor, RoleAdmin, RolePolicy:
			return nil
		case "":
			return &FieldError{"role", "is required"}
		default:
			return &FieldError{"role", `must be "viewer", "editor", "admin" or "policy"`}
		}
	case LevelOrganization:
		if u.Account != "" {
			return &FieldError{"account", "is for account-level users; organization-level users list accounts"}
		}
		if err := checkIDList("accounts", u.Accounts, MaxAccountsOfUser, ValidAccountID, "act-1a2b3c4d"); err != nil {
			return err
		}
		switch u.Role {
		case RoleViewer, RoleEditor, RoleAdmin:
			return nil
		case RolePolicy:
			return &FieldError{"role", "policy roles are for account-level users"}
		case "":
			return &FieldError{"role", "is required"}
		default:
			return &FieldError{"role", `must be "viewer", "editor" or "admin"`}
		}
	case "":
		return &FieldError{"level", "is required"}
	default:
		return &FieldError{"level", `must be "organization" or "account"`}
	}
}

// checkPolicies: a policy-based user names its policies; no one else may.
func checkPolicies(u *User) error {
	if u.Role != RolePolicy {
		if len(u.Policies) > 0 {
			return &FieldError{"policies", `is only allowed when role is "policy"`}
		}
		return nil
	}
	if len(u.Policies) == 0 {
		return &FieldError{"policies", `is required when role is "policy"`}
	}
	return checkIDList("policies", u.Policies, MaxPoliciesOfUser, ValidPolicyID, "pol-1a2b3c4d")
}

// canonicalLimits checks the user's allowed networks and rate limit and
// writes them the one way they are stored.
func canonicalLimits(u *User) error {
	cidrs, err := canonicalCIDRs(u.AllowedCIDRs)
	if err != nil {
		return err
	}
	u.AllowedCIDRs = cidrs
	if u.RateLimit != nil {
		rl, err := canonicalRateLimit(*u.RateLimit)
		if err != nil {
			return err
		}
		u.RateLimit = &rl
	}
	return nil
}

// canonicalRateLimit checks a rate_limit and writes its window the one way
// the store keeps it.
func canonicalRateLimit(r RateLimit) (RateLimit, error) {
	if r.Requests < 1 || r.Requests > MaxRateRequests {
		return r, &FieldError{"rate_limit.requests", fmt.Sprintf("must be from 1 to %d", MaxRateRequests)}
	}
	d, err := time.ParseDuration(r.Window)
	switch {
	case err != nil:
		return r, &FieldError{"rate_limit.window", `must be a duration such as "1s", "1m" or "24h"`}
	case d < MinRateWindow || d > MaxRateWindow:
		return r, &FieldError{"rate_limit.window", "must be from 1s to 24h"}
	case d%time.Second != 0:
		return r, &FieldError{"rate_limit.window", "must be a whole number of seconds"}
	}
	r.Window = formatWindow(d)
	return r, nil
}

// formatWindow writes a whole number of seconds in its largest whole unit.
func formatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func checkIDList(field string, ids []string, max int, valid func(string) bool, example string) error {
	if len(ids) > max {
		return &FieldError{field, fmt.Sprintf("must list at most %d", max)}
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !valid(id) {
			return &FieldError{field, fmt.Sprintf("%q must look like %s", id, example)}
		}
		if seen[id] {
			return &FieldError{field, fmt.Sprintf("%q is listed twice", id)}
		}
		seen[id] = true
	}
	return nil
}

// ValidatePolicy checks a policy document. Path patterns are checked for
// shape only; the gateway compiles them.
func ValidatePolicy(p *Policy) error {
	if err := checkName("name", p.Name, true); err != nil {
		return err
	}
	if err := checkDescription(p.Description); err != nil {
		return err
	}
	if p.Account != "" && !ValidAccountID(p.Account) {
		return &FieldError{"account", "must look like act-1a2b3c4d"}
	}
	if len(p.Statements) == 0 {
		return &FieldError{"statements", "must hold at least one statement"}
	}
	if len(p.Statements) > MaxStatements {
		return &FieldError{"statements", fmt.Sprintf("must hold at most %d statements", MaxStatements)}
	}
	for i, st := range p.Statements {
		field := fmt.Sprintf("statements[%d]", i)
		if st.Effect != "allow" && st.Effect != "deny" {
			return &FieldError{field + ".effect", `must be "allow" or "deny"`}
		}
		if len(st.Methods) == 0 || len(st.Methods) > MaxStatementItems {
			return &FieldError{field + ".methods", fmt.Sprintf("must list 1 to %d methods", MaxStatementItems)}
		}
		for _, m := range st.Methods {
			if m != "*" && !methodPattern.MatchString(m) {
				return &FieldError{field + ".methods", fmt.Sprintf("%q is not an HTTP method in upper case, or *", m)}
			}
		}
		if len(st.Paths) == 0 || len(st.Paths) > MaxStatementItems {
			return &FieldError{field + ".paths", fmt.Sprintf("must list 1 to %d paths", MaxStatementItems)}
		}
		for _, path := range st.Paths {
			if len(path) > MaxPathLen || strings.ContainsFunc(path, isControl) || !utf8.ValidString(path) {
				return &FieldError{field + ".paths", fmt.Sprintf("%q must hold at most %d printable characters", path, MaxPathLen)}
			}
			if err := policy.ValidatePattern(path); err != nil {
				return &FieldError{field + ".paths", fmt.Sprintf("%q: %v", path, err)}
			}
		}
	}
	return nil
}
