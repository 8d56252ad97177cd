package admin

import (
	"time"

	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
)

// The shapes the API answers with. They are separate from the stored
// records so that nothing stored (a token's digest, say) leaks by accident.

type orgView struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	CreatedAt        time.Time   `json:"created_at"`
	CreatedBy        store.Actor `json:"created_by"`
	MaxTokenLifetime string      `json:"max_token_lifetime,omitempty"`
	DormantAfter     string      `json:"dormant_after,omitempty"`
}

func viewOrg(o *store.Org) orgView {
	return orgView{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt, CreatedBy: o.CreatedBy,
		MaxTokenLifetime: o.MaxTokenLifetime, DormantAfter: o.DormantAfter}
}

type accountView struct {
	ID        string      `json:"id"`
	Org       string      `json:"org"`
	Name      string      `json:"name"`
	CreatedAt time.Time   `json:"created_at"`
	CreatedBy store.Actor `json:"created_by"`
}

func viewAccount(a *store.Account) accountView {
	return accountView{ID: a.ID, Org: a.Org, Name: a.Name, CreatedAt: a.CreatedAt, CreatedBy: a.CreatedBy}
}

type policyView struct {
	ID          string             `json:"id"`
	Org         string             `json:"org"`
	Account     string             `json:"account,omitempty"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Statements  []policy.Statement `json:"statements"`
	CreatedAt   time.Time          `json:"created_at"`
	CreatedBy   store.Actor        `json:"created_by"`
	UpdatedAt   *time.Time         `json:"updated_at,omitempty"`
}

func viewPolicy(p *store.Policy) policyView {
	v := policyView{ID: p.ID, Org: p.Org, Account: p.Account, Name: p.Name, Description: p.Description,
		Statements: p.Statements, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}
	if !p.UpdatedAt.IsZero() {
		v.UpdatedAt = &p.UpdatedAt
	}
	return v
}

type userView struct {
	ID           string         `json:"id"`
	Org          string         `json:"org"`
	Type         string         `json:"type"`
	Level        string         `json:"level"`
	Account      string         `json:"account,omitempty"`
	Accounts     []string       `json:"accounts,omitempty"`
	Role         string         `json:"role"`
	Policies     []string       `json:"policies,omitempty"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Email        string         `json:"email,omitempty"`
	AllowedCIDRs []string       `json:"allowed_cidrs,omitempty"`
	RateLimit    *rateLimitView `json:"rate_limit,omitempty"`
	// Proposed are rights under trial (report-only): not enforced; the
	// gateway counts the requests they would refuse.
	Proposed  *store.Proposed `json:"proposed,omitempty"`
	Disabled  bool            `json:"disabled"`
	CreatedAt time.Time       `json:"created_at"`
	CreatedBy store.Actor     `json:"created_by"`
	UpdatedAt *time.Time      `json:"updated_at,omitempty"`
}

func viewUser(u *store.User) userView {
	v := userView{ID: u.ID, Org: u.Org, Type: u.Type, Level: u.Level, Account: u.Account, Accounts: u.Accounts,
		Role: u.Role, Policies: u.Policies, Name: u.Name, Description: u.Description, Email: u.Email,
		AllowedCIDRs: u.AllowedCIDRs, Proposed: u.Proposed, Disabled: u.Disabled, CreatedAt: u.CreatedAt, CreatedBy: u.CreatedBy}
	// Organization-level users always show their account list, even empty.
	if u.Level == store.LevelOrganization && v.Accounts == nil {
		v.Accounts = []string{}
	}
	if u.RateLimit != nil {
		v.RateLimit = &rateLimitView{Requests: u.RateLimit.Requests, Window: u.RateLimit.Window}
	}
	if !u.UpdatedAt.IsZero() {
		v.UpdatedAt = &u.UpdatedAt
	}
	return v
}

// rateLimitView is a user's budget: requests per window, the window in the
// store's canonical form ("2m", never "120s").
type rateLimitView struct {
	Requests int64  `json:"requests"`
	Window   string `json:"window"`
}

// newTokenView is a token as created: the one answer that holds its secret.
type newTokenView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Secret    string     `json:"secret"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func viewNewToken(t *store.Token, secret string) newTokenView {
	return newTokenView{ID: t.ID, Name: t.Name, Secret: secret, Hint: t.Hint, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

// tokenView is a token as listed: never its secret.
type tokenView struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Hint       string      `json:"hint"`
	CreatedAt  time.Time   `json:"created_at"`
	CreatedBy  store.Actor `json:"created_by"`
	ExpiresAt  *time.Time  `json:"expires_at"`
	LastUsedAt *time.Time  `json:"last_used_at"`
	// LastUsedFrom is the client address and user agent of a request that
	// carried the token at about LastUsedAt (noted once a minute per
	// gateway); absent before its first use.
	LastUsedFrom *store.Client `json:"last_used_from,omitempty"`
}

func viewToken(t *store.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Hint: t.Hint, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, LastUsedFrom: t.LastClient}
}

// eventView is an audit event as the API shows it, the same shape
// webhooks deliver.
type eventView = store.EventView

func viewEvent(e *store.Event) eventView { return e.View() }

// webhookView is a webhook as listed: never its secret.
type webhookView struct {
	ID          string      `json:"id"`
	Org         string      `json:"org"`
	URL         string      `json:"url"`
	Events      []string    `json:"events"`
	Description string      `json:"description"`
	Disabled    bool        `json:"disabled"`
	CreatedAt   time.Time   `json:"created_at"`
	CreatedBy   store.Actor `json:"created_by"`
	UpdatedAt   *time.Time  `json:"updated_at,omitempty"`
	// PreviousSecretExpiresAt: after a rotation with an overlap, until
	// when the previous secret signs too (never the secret itself).
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

func viewWebhook(w *store.Webhook) webhookView {
	v := webhookView{ID: w.ID, Org: w.Org, URL: w.URL, Events: w.Events, Description: w.Description, Disabled: w.Disabled,
		CreatedAt: w.CreatedAt, CreatedBy: w.CreatedBy}
	if len(w.Secrets(time.Now())) > 1 { // the previous secret still signs
		v.PreviousSecretExpiresAt = w.PreviousSecretExpiresAt
	}
	if !w.UpdatedAt.IsZero() {
		v.UpdatedAt = &w.UpdatedAt
	}
	return v
}

// newWebhookView is a webhook as created: the one answer that holds its
// secret.
type newWebhookView struct {
	webhookView
	Secret string `json:"secret"`
}

func viewNewWebhook(w *store.Webhook) newWebhookView {
	return newWebhookView{webhookView: viewWebhook(w), Secret: w.Secret}
}

type deliveryView struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Attempt    int       `json:"attempt"`
	Status     string    `json:"status"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Time       time.Time `json:"time"`
}

func viewDelivery(d *store.Delivery) deliveryView {
	return deliveryView{EventID: d.EventID, Type: d.Type, Attempt: d.Attempt, Status: d.Status, HTTPStatus: d.HTTPStatus,
		Error: d.Error, Time: d.Time}
}
