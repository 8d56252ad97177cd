package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/tokengate/tokengate/module/token"
)

// Identifier shapes. Identifiers become parts of etcd keys, so nothing that
// does not match is ever used to build a key.
var (
	orgIDPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	accountIDPattern = regexp.MustCompile(`^act-[0-9a-f]{8}$`)
	policyIDPattern  = regexp.MustCompile(`^pol-[0-9a-f]{8}$`)
	userIDPattern    = regexp.MustCompile(`^u-[0-9a-f]{12}$`)
	tokenIDPattern   = regexp.MustCompile(`^tok-[0-9a-f]{12}$`)
	webhookIDPattern = regexp.MustCompile(`^wh-[0-9a-f]{8}$`)
)

// ValidOrgID reports whether id can name an organization: lowercase letters,
// digits and dashes, at most 63 characters.
func ValidOrgID(id string) bool { return orgIDPattern.MatchString(id) }

// ValidAccountID reports whether id has the shape act-<8 lowercase hex>.
func ValidAccountID(id string) bool { return accountIDPattern.MatchString(id) }

// ValidPolicyID reports whether id has the shape pol-<8 lowercase hex>.
func ValidPolicyID(id string) bool { return policyIDPattern.MatchString(id) }

// ValidUserID reports whether id has the shape u-<12 lowercase hex>.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// ValidTokenID reports whether id has the shape tok-<12 lowercase hex>.
func ValidTokenID(id string) bool { return tokenIDPattern.MatchString(id) }

// ValidWebhookID reports whether id has the shape wh-<8 lowercase hex>.
func ValidWebhookID(id string) bool { return webhookIDPattern.MatchString(id) }

func newID(prefix string, hexLen int) string {
	b := make([]byte, hexLen/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + hex.EncodeToString(b)
}

// NewOrgID, NewAccountID, ... generate identifiers of each kind.
func NewOrgID() string     { return newID("org-", 8) }
func NewAccountID() string { return newID("act-", 8) }
func NewPolicyID() string  { return newID("pol-", 8) }
func NewUserID() string    { return newID("u-", 12) }
func NewTokenID() string   { return newID("tok-", 12) }
func NewWebhookID() string { return newID("wh-", 8) }

func (s *Store) orgKey(org string) string          { return s.prefix + "/orgs/" + org }
func (s *Store) accountsPrefix(org string) string  { return s.prefix + "/accounts/" + org + "/" }
func (s *Store) accountKey(org, act string) string { return s.accountsPrefix(org) + act }
func (s *Store) accountIDsPrefix() string          { return s.prefix + "/accountids/" }
func (s *Store) accountIDKey(act string) string    { return s.accountIDsPrefix() + act }
func (s *Store) accountIDsBuiltKey() string        { return s.prefix + "/accountids" }
func (s *Store) policiesPrefix(org string) string  { return s.prefix + "/policies/" + org + "/" }
func (s *Store) policyKey(org, pol string) string  { return s.policiesPrefix(org) + pol }
func (s *Store) usersPrefix(org string) string     { return s.usersRoot() + org + "/" }
func (s *Store) usersRoot() string                 { return s.prefix + "/users/" }
func (s *Store) userKey(org, user string) string   { return s.usersPrefix(org) + user }

// userOfKey is the organization and ID of a user's key; ok is false for
// any other key.
func (s *Store) userOfKey(key string) (org, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, s.usersRoot())
	if !ok {
		return "", "", false
	}
	org, id, ok = strings.Cut(rest, "/")
	return org, id, ok && !strings.Contains(id, "/")
}

func (s *Store) tokenKey(h token.Hash) string {
	return s.prefix + "/tokens/" + hex.EncodeToString(h[:])
}
func (s *Store) tokenKeyHex(hexHash string) string { return s.prefix + "/tokens/" + hexHash }
func (s *Store) userTokensRoot() string            { return s.prefix + "/usertokens/" }
func (s *Store) userTokensPrefix(org, user string) string {
	return s.userTokensRoot() + org + "/" + user + "/"
}
func (s *Store) userTokenKey(org, user, tok string) string {
	return s.userTokensPrefix(org, user) + tok
}

// userOfTokenKey is the organization and user of a token record's key; ok
// is false for any other key.
func (s *Store) userOfTokenKey(key string) (org, user string, ok bool) {
	rest, ok := strings.CutPrefix(key, s.userTokensRoot())
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	return parts[0], parts[min(1, len(parts)-1)], len(parts) == 3
}
func (s *Store) auditPrefix(org string) string { return s.prefix + "/audit/" + org + "/" }

// AuditPrefix is where an organization's audit events live: what a
// webhook's deliveries follow.
func (s *Store) AuditPrefix(org string) string { return s.auditPrefix(org) }

// WebhooksPrefix is where every organization's webhooks live.
func (s *Store) WebhooksPrefix() string { return s.prefix + "/webhooks/" }

// WebhookLeaderPrefix is the etcd election of the gateway that delivers
// webhooks (go.etcd.io/etcd/client/v3/concurrency).
func (s *Store) WebhookLeaderPrefix() string { return s.prefix + "/leader/webhooks/" }

// RateLimitPrefix is where gateways share rate-limit budgets: their
// registrations and the demand of hot users (module/ratelimit). It lies
// outside VerdictRange: budgets change many times a second and no
// gateway's cache needs to hear of it.
func (s *Store) RateLimitPrefix() string { return s.prefix + "/_ratelimit/" }

// VerdictRange is the key range [start, end) the identity cache watches:
// every key that decides a verdict (organizations, accounts, policies,
// users, tokens) lies in it, and the keys written on the request path
// (last-use times, rate-limit budgets) and by webhook deliveries lie
// outside it, so etcd sends a gateway only what may change a verdict,
// and the rare writes in between (audit events, the election, expiry
// warnings), which the cache ignores (NoVerdictPrefixes).
func (s *Store) VerdictRange() (start, end string) { return s.prefix + "/accounts/", s.prefix + "/v" }

// NoVerdictPrefixes are the key prefixes whose changes never change a
// token's verdict: the identity cache's watch ignores them.
func (s *Store) NoVerdictPrefixes() []string {
	return []string{s.prefix + "/audit/", s.legacyLastUsedPrefix(), s.WebhooksPrefix(), s.prefix + "/whcursors/",
		s.prefix + "/whdeliveries/", s.prefix + "/expiring/", s.dormantPrefix(), s.prefix + "/leader/", s.RateLimitPrefix(),
		s.legacyRateLimitPrefix(), s.lastUsedRoot(), s.lastClientRoot(), s.usageRoot(), s.accountIDsBuiltKey()}
}

func (s *Store) webhooksPrefix(org string) string { return s.WebhooksPrefix() + org + "/" }
func (s *Store) webhookKey(org, id string) string { return s.webhooksPrefix(org) + id }
func (s *Store) webhookCursorKey(org, id string) string {
	return s.prefix + "/whcursors/" + org + "/" + id
}
func (s *Store) deliveriesPrefix(org, id string) string {
	return s.prefix + "/whdeliveries/" + org + "/" + id + "/"
}
func (s *Store) expiringUserPrefix(org, user string) string {
	return s.prefix + "/expiring/" + org + "/" + user + "/"
}
func (s *Store) expiringKey(org, user, tok string) string {
	return s.expiringUserPrefix(org, user) + tok
}

// auditSeq orders events newest first: keys sort ascending, so the sequence
// counts down from the largest time; the random tail keeps events of the
// same nanosecond apart.
func auditSeq(nanos int64) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%019d-%s", math.MaxInt64-nanos, hex.EncodeToString(b))
}
