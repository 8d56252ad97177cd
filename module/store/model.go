package store

import (
	"time"

	"github.com/tokengate/tokengate/module/policy"
)

// User types.
const (
	TypeUI           = "ui"
	TypeProgrammatic = "programmatic"
)

// User levels.
const (
	LevelOrganization = "organization"
	LevelAccount      = "account"
)

// Roles.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleAdmin  = "admin"
	RolePolicy = "policy"
)

// Actor types recorded in the audit trail and in created_by. Operator is
// whoever holds Caddy's admin endpoint; reporter is whoever reported a
// token as leaked (its ID is the client IP the report came from).
const (
	ActorUI           = TypeUI
	ActorProgrammatic = TypeProgrammatic
	ActorOperator     = "operator"
	ActorReporter     = "reporter"
)

// Actor is who made a change.
type Actor struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Org is an organization: the top of the tree.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Actor     `json:"created_by"`
}

// Account belongs to one organization.
type Account struct {
	ID        string    `json:"id"`
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Actor     `json:"created_by"`
}

// Statement allows or denies methods on paths; see package policy.
type Statement = policy.Statement

// Policy is a named set of statements, optionally scoped to one account.
type Policy struct {
	ID          string      `json:"id"`
	Org         string      `json:"org"`
	Account     string      `json:"account,omitempty"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Statements  []Statement `json:"statements"`
	CreatedAt   time.Time   `json:"created_at"`
	CreatedBy   Actor       `json:"created_by"`
	UpdatedAt   time.Time   `json:"updated_at,omitzero"`
}

// User is a UI or programmatic user.
type User struct {
	ID          string   `json:"id"`
	Org         string   `json:"org"`
	Type        string   `json:"type"`
	Level       string   `json:"level"`
	Account     string   `json:"account,omitempty"`
	Accounts    []string `json:"accounts,omitempty"`
	Role        string   `json:"role"`
	Policies    []string `json:"policies,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Email       string   `json:"email,omitempty"`
	// AllowedCIDRs are the networks the user's tokens may be used from, in
	// canonical form (see ParseCIDR); none: anywhere.
	AllowedCIDRs []string  `json:"allowed_cidrs,omitempty"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    Actor     `json:"created_by"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

// Reaches reports whether the user may act on the given account.
func (u *User) Reaches(account string) bool {
	if u.Level == LevelAccount {
		return u.Account == account
	}
	for _, a := range u.Accounts {
		if a == account {
			return true
		}
	}
	return false
}

// Token is what the store knows of a token: never its secret.
type Token struct {
	ID   string `json:"id"`
	Org  string `json:"org"`
	User string `json:"user"`
	Name string `json:"name"`
	Hint string `json:"hint"`
	// Hash is the hex SHA-256 of the secret; the record needs it to remove
	// the digest's key when the token goes.
	Hash       string     `json:"hash"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  Actor      `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Expired reports whether the token has expired at time now.
func (t *Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// Event is one entry of the audit trail.
type Event struct {
	// Seq orders events newest first; it is also the listing cursor.
	Seq     string    `json:"-"`
	Time    time.Time `json:"time"`
	Org     string    `json:"org"`
	Actor   Actor     `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Account string    `json:"account,omitempty"`
	// Reason says why, where the action alone does not: "reported" for
	// a token revoked because it was reported as leaked.
	Reason string `json:"reason,omitempty"`
}

// Audit actions.
const (
	ActionOrgCreate     = "org.create"
	ActionAccountCreate = "account.create"
	ActionAccountDelete = "account.delete"
	ActionPolicyCreate  = "policy.create"
	ActionPolicyUpdate  = "policy.update"
	ActionPolicyDelete  = "policy.delete"
	ActionUserCreate    = "user.create"
	ActionUserUpdate    = "user.update"
	ActionUserDelete    = "user.delete"
	ActionTokenCreate   = "token.create"
	ActionTokenRevoke   = "token.revoke"
)
