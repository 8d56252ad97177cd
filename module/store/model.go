package store

import (
	"fmt"
	"strconv"
	"strings"
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
// token as leaked (its ID is the client IP the report came from); system is
// tokengate itself (token.expiring events), with the ID "tokengate".
const (
	ActorUI           = TypeUI
	ActorProgrammatic = TypeProgrammatic
	ActorOperator     = "operator"
	ActorReporter     = "reporter"
	ActorSystem       = "system"
)

// System is tokengate itself, as the actor of the events it writes on its
// own (token.expiring).
var System = Actor{ID: "tokengate", Type: ActorSystem}

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
	// MaxTokenLifetime bounds how long the organization's new tokens may
	// live, in whole days ("90d"); empty: no bound. A token asked for
	// longer is refused; one asked for without an expiry gets this one.
	MaxTokenLifetime string `json:"max_token_lifetime,omitempty"`
	// DormantAfter is how long a user may make no request before it is
	// reported dormant (user.dormant), in whole days; empty: 30d.
	DormantAfter string `json:"dormant_after,omitempty"`
}

// DefaultDormantAfter is how long a user may make no request before it is
// reported dormant, unless its organization says otherwise.
const DefaultDormantAfter = 30 * 24 * time.Hour

// MaxSettingDays bounds the days of an organization's settings.
const MaxSettingDays = 3650

// ParseDays reads a whole number of days written "<n>d", 1 to
// MaxSettingDays; "" is zero.
func ParseDays(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
	if !strings.HasSuffix(v, "d") || err != nil || n < 1 || n > MaxSettingDays || strconv.Itoa(n)+"d" != v {
		return 0, fmt.Errorf("must be a whole number of days such as \"90d\", from 1d to %dd", MaxSettingDays)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// Dormancy is how long a user of the organization may make no request
// before it is reported dormant.
func (o *Org) Dormancy() time.Duration {
	if d, err := ParseDays(o.DormantAfter); err == nil && d > 0 {
		return d
	}
	return DefaultDormantAfter
}

// boundLifetime applies the organization's MaxTokenLifetime to a new
// token at now: the bound when it has no expiry, a refusal when it asks
// for more.
func (o *Org) boundLifetime(t *Token, now time.Time) error {
	max, err := ParseDays(o.MaxTokenLifetime)
	if err != nil || max == 0 {
		return nil
	}
	limit := now.UTC().Add(max)
	switch {
	case t.ExpiresAt == nil:
		t.ExpiresAt = &limit
	case t.ExpiresAt.After(limit):
		return &FieldError{"expires_in", fmt.Sprintf("organization %s allows tokens of at most %s (max_token_lifetime)", o.ID, o.MaxTokenLifetime)}
	}
	return nil
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
	// Proposed are rights tried in report-only mode: the gateway keeps
	// enforcing the user's own and counts every request these would
	// refuse. nil: none.
	Proposed *Proposed `json:"proposed,omitempty"`
	// AllowedCIDRs are the networks the user's tokens may be used from, in
	// canonical form (see ParseCIDR); none: anywhere.
	AllowedCIDRs []string `json:"allowed_cidrs,omitempty"`
	// RateLimit is the user's budget of requests, one for every gateway
	// sharing the cluster; nil: none.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	Disabled  bool       `json:"disabled"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy Actor      `json:"created_by"`
	UpdatedAt time.Time  `json:"updated_at,omitzero"`
}

// RateLimit is a budget of requests per window: at most Requests in each
// window of length Window, windows aligned on the Unix epoch.
type RateLimit struct {
	Requests int64 `json:"requests"`
	// Window is a whole number of seconds from 1s to 24h, written in its
	// largest whole unit: "90s", "2m", "24h" ("120s" is stored as "2m").
	Window string `json:"window"`
}

// Proposed are a user's rights under trial: a role, and the accounts (of
// an organization-level user) and policies (of role policy) that go with
// it, as the user's own fields of those names.
type Proposed struct {
	Role     string   `json:"role"`
	Accounts []string `json:"accounts,omitempty"`
	Policies []string `json:"policies,omitempty"`
}

// WithProposed returns the user as it would be with its proposed rights,
// or nil when it has none.
func (u *User) WithProposed() *User {
	if u.Proposed == nil {
		return nil
	}
	c := *u
	c.Proposed = nil
	c.Role, c.Accounts, c.Policies = u.Proposed.Role, u.Proposed.Accounts, u.Proposed.Policies
	return &c
}

// Limits of a rate_limit.
const (
	MinRateWindow   = time.Second
	MaxRateWindow   = 24 * time.Hour
	MaxRateRequests = 1_000_000_000
)

// WindowDuration is the window as a duration; zero when it does not parse
// (never for a validated record).
func (r *RateLimit) WindowDuration() time.Duration {
	d, err := time.ParseDuration(r.Window)
	if err != nil {
		return 0
	}
	return d
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
	// LastClient is where the token was last used from; read beside
	// LastUsedAt, never kept in the record.
	LastClient *Client `json:"-"`
	// ReplacedBy is the token that replaced this one in a rotation with
	// an overlap: it is on its way out, and no token.expiring event is
	// sent for it.
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// Expired reports whether the token has expired at time now.
func (t *Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// Event is one entry of the audit trail.
type Event struct {
	// Seq orders events newest first; it is also the listing cursor and
	// the event's ID (the webhook-id of its deliveries).
	Seq string `json:"-"`
	// Revision is the etcd revision the event was written at: the order
	// of the audit trail, which webhooks are delivered in. Every
	// transaction writes at most one event, so no two events share one.
	Revision int64     `json:"-"`
	Time     time.Time `json:"time"`
	Org      string    `json:"org"`
	Actor    Actor     `json:"actor"`
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Account  string    `json:"account,omitempty"`
	// User is the user whose token a token.* event is about.
	User string `json:"user,omitempty"`
	// Reason says why, where the action alone does not: "reported" for
	// a token revoked because it was reported as leaked.
	Reason string `json:"reason,omitempty"`
	// Window and ExpiresAt, of a token.expiring event: which warning this
	// is ("7d" or "1d" before expiry) and when the token expires. Window
	// of a user.dormant event is the organization's dormant_after.
	Window    string     `json:"window,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastActiveAt, of a user.dormant event: the user's last request (its
	// creation when it made none).
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

// EventView is an audit event as the audit API shows it, and as webhooks
// deliver it (the data of the payload).
type EventView struct {
	ID        string     `json:"id"`
	Time      time.Time  `json:"time"`
	Actor     Actor      `json:"actor"`
	Action    string     `json:"action"`
	Target    string     `json:"target"`
	Account   string     `json:"account,omitempty"`
	User      string     `json:"user,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Window    string     `json:"window,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastActiveAt is user.dormant's.
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

// View is the event as the audit API shows it.
func (e *Event) View() EventView {
	return EventView{ID: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Account: e.Account,
		User: e.User, Reason: e.Reason, Window: e.Window, ExpiresAt: e.ExpiresAt, LastActiveAt: e.LastActiveAt}
}

// Audit actions.
const (
	ActionOrgCreate     = "org.create"
	ActionOrgUpdate     = "org.update"
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
	// ActionTokenExpiring warns, 7 days and 1 day ahead, that a token
	// expires; tokengate writes it itself (actor System).
	ActionTokenExpiring = "token.expiring"
	ActionWebhookCreate = "webhook.create"
	ActionWebhookUpdate = "webhook.update"
	ActionWebhookDelete = "webhook.delete"
	// ActionUserDormant says a user made no request for its
	// organization's dormant_after; tokengate writes it itself (actor
	// System), once until the user is used again.
	ActionUserDormant = "user.dormant"
)

// Actions are every audit action, in the order the documentation lists
// them: what a webhook may subscribe to.
var Actions = []string{
	ActionOrgCreate, ActionOrgUpdate, ActionAccountCreate, ActionAccountDelete,
	ActionPolicyCreate, ActionPolicyUpdate, ActionPolicyDelete,
	ActionUserCreate, ActionUserUpdate, ActionUserDelete, ActionUserDormant,
	ActionTokenCreate, ActionTokenRevoke, ActionTokenExpiring,
	ActionWebhookCreate, ActionWebhookUpdate, ActionWebhookDelete,
}

// Webhook is a subscription of an organization to audit actions: each
// event it subscribes to is POSTed to URL, signed with Secret (Standard
// Webhooks).
type Webhook struct {
	ID  string `json:"id"`
	Org string `json:"org"`
	URL string `json:"url"`
	// Events are the actions delivered, or just "*" for every one.
	Events      []string `json:"events"`
	Description string   `json:"description"`
	// Disabled webhooks receive nothing: events meanwhile are skipped.
	Disabled bool `json:"disabled"`
	// Secret signs the deliveries: "whsec_" and the base64 of the key.
	// It is kept because signing needs it; the API shows it only in the
	// answer that creates the webhook, and nothing logs it.
	Secret string `json:"secret"`
	// PreviousSecret, after a rotation with an overlap, still signs
	// deliveries beside Secret until PreviousSecretExpiresAt, so that
	// receivers can move to the new secret meanwhile (Standard Webhooks
	// allows several signatures).
	PreviousSecret          string     `json:"previous_secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	CreatedBy               Actor      `json:"created_by"`
	UpdatedAt               time.Time  `json:"updated_at,omitzero"`

	// CreateRevision is the etcd revision the webhook was created at:
	// deliveries start with the events of that revision (its own
	// webhook.create event), and the engine's writes are guarded by it.
	CreateRevision int64 `json:"-"`
}

// Secrets are the secrets that sign a delivery at time now: the current
// one, and the previous one within its overlap.
func (w *Webhook) Secrets(now time.Time) []string {
	if w.PreviousSecret != "" && w.PreviousSecretExpiresAt != nil && now.Before(*w.PreviousSecretExpiresAt) {
		return []string{w.Secret, w.PreviousSecret}
	}
	return []string{w.Secret}
}

// Subscribes reports whether the webhook delivers events of action.
func (w *Webhook) Subscribes(action string) bool {
	for _, e := range w.Events {
		if e == "*" || e == action {
			return true
		}
	}
	return false
}

// Delivery statuses.
const (
	// DeliveryDelivered: the receiver answered 2xx.
	DeliveryDelivered = "delivered"
	// DeliveryRetrying: the attempt failed; another follows.
	DeliveryRetrying = "retrying"
	// DeliveryFailed: the last attempt failed and the event was given up
	// after the retry period, or the webhook was disabled meanwhile.
	DeliveryFailed = "failed"
)

// Delivery is one attempt to deliver an event to a webhook.
type Delivery struct {
	// Seq orders deliveries newest first; it is also the listing cursor.
	Seq     string `json:"-"`
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// Attempt counts the attempts for this event, from 1.
	Attempt int    `json:"attempt"`
	Status  string `json:"status"`
	// HTTPStatus is the receiver's answer; 0 when there was none.
	HTTPStatus int `json:"http_status,omitempty"`
	// Error says why the attempt failed.
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time"`
}
