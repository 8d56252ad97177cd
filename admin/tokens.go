package admin

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// Bounds on token lifetimes.
const (
	MaxExpiresIn = 10 * 365 * 24 * time.Hour
	MaxOverlap   = 90 * 24 * time.Hour
)

// POST /orgs/{org}/users/{user}/tokens {"name"?, "expires_in"?, "replaces"?,
// "overlap"?}: a new token, its secret shown this once. With replaces, the
// old token keeps working for overlap (default 0: stops at once). Who may
// is mayCreateToken's to say.
func createToken(c *call) error {
	u, err := c.tokenUser()
	if err != nil {
		return err
	}
	if err := c.mayCreateToken(u); err != nil {
		return err
	}
	var name, expiresIn, replaces, overlap string
	present, err := c.decodePresent(fields{"name": &name, "expires_in": &expiresIn, "replaces": &replaces, "overlap": &overlap})
	if err != nil {
		return err
	}
	kind := token.Personal
	if u.Type == store.TypeProgrammatic {
		kind = token.Programmatic
	}
	secret, nt, err := newToken(kind, name)
	if err != nil {
		return err
	}
	nt.Token.Org, nt.Token.User = u.Org, u.ID
	if present["expires_in"] {
		d, err := caddy.ParseDuration(expiresIn)
		if err != nil || d <= 0 || d > MaxExpiresIn {
			return invalid("expires_in", `must be a positive duration such as "720h" or "90d", at most 10 years`)
		}
		at := time.Now().UTC().Add(d)
		nt.Token.ExpiresAt = &at
	}
	var rot *store.Rotation
	if present["replaces"] {
		rot = &store.Rotation{Replaces: replaces}
		if present["overlap"] {
			if rot.Overlap, err = parseOverlap(overlap); err != nil {
				return err
			}
		}
	} else if present["overlap"] {
		return invalid("overlap", "goes with replaces")
	}
	// Judged again inside the store's transaction, on the user as it is
	// when the token is written.
	t, err := c.api.store.CreateTokenChecked(c.r.Context(), *nt, rot, c.mayCreateToken, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusCreated, store.ActionTokenCreate, t.ID, viewNewToken(t, secret))
}

// parseOverlap reads how long a replaced token or webhook secret keeps
// working: a duration of at most MaxOverlap.
func parseOverlap(s string) (time.Duration, error) {
	d, err := caddy.ParseDuration(s)
	if err != nil || d < 0 || d > MaxOverlap {
		return 0, invalid("overlap", `must be a duration such as "1h", at most 90 days`)
	}
	return d, nil
}

// GET /orgs/{org}/users/{user}/tokens: never a secret. A UI user may list
// its own.
func listTokens(c *call) error {
	u, err := c.tokenUser()
	if err != nil {
		return err
	}
	if _, err := query(c.r.URL); err != nil {
		return err
	}
	tokens, err := c.api.store.ListTokens(c.r.Context(), u.Org, u.ID)
	if err != nil {
		return err
	}
	out := []tokenView{}
	for i := range tokens {
		out = append(out, viewToken(&tokens[i]))
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// DELETE /orgs/{org}/users/{user}/tokens/{tok}: refused at once. A UI user
// may revoke its own.
func revokeToken(c *call) error {
	u, err := c.tokenUser()
	if err != nil {
		return err
	}
	tok := c.params["tok"]
	if err := c.api.store.RevokeToken(c.r.Context(), u.Org, u.ID, tok, c.caller.Actor()); err != nil {
		return err
	}
	return c.changed(http.StatusNoContent, store.ActionTokenRevoke, tok, nil)
}
