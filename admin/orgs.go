package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/store"
)

// POST /orgs {"name", "id"?}: the operator only.
func createOrg(c *call) error {
	if !c.caller.Operator {
		return forbidden("organizations are created on Caddy's admin endpoint only")
	}
	var in store.Org
	if err := c.decode(fields{"name": &in.Name, "id": &in.ID}, "name"); err != nil {
		return err
	}
	o, err := c.api.store.CreateOrg(c.r.Context(), in, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusCreated, store.ActionOrgCreate, o.ID, viewOrg(o))
}

// GET /orgs: the operator only, as organizations are created there; an
// admin through tokengate_admin knows its own organization.
func listOrgs(c *call) error {
	if !c.caller.Operator {
		return forbidden("organizations are listed on Caddy's admin endpoint only")
	}
	if _, err := query(c.r.URL); err != nil {
		return err
	}
	orgs, err := c.api.store.ListOrgs(c.r.Context())
	if err != nil {
		return err
	}
	out := make([]orgView, 0, len(orgs))
	for i := range orgs {
		out = append(out, viewOrg(&orgs[i]))
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"orgs": out})
	return nil
}

// GET /orgs/{org}
func getOrg(c *call) error {
	org := c.params["org"]
	if _, err := c.admin(org); err != nil {
		return err
	}
	o, err := c.api.store.GetOrg(c.r.Context(), org)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, viewOrg(o))
	return nil
}

// PATCH /orgs/{org} {"name"?, "max_token_lifetime"?, "dormant_after"?}:
// the operator and the organization's organization-level admins. "" clears
// a setting. With a max_token_lifetime, the answer lists the live tokens
// that outlive it (created before it was set): they are not cut short.
func patchOrg(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if err := sc.orgOnly("change the organization"); err != nil {
		return err
	}
	var name, maxLifetime, dormantAfter string
	present, err := c.decodePresent(fields{"name": &name, "max_token_lifetime": &maxLifetime, "dormant_after": &dormantAfter})
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return invalid("body", "names nothing to change (name, max_token_lifetime, dormant_after)")
	}
	var ch store.OrgChange
	for _, f := range []struct {
		name string
		v    *string
		to   **string
	}{{"name", &name, &ch.Name}, {"max_token_lifetime", &maxLifetime, &ch.MaxTokenLifetime}, {"dormant_after", &dormantAfter, &ch.DormantAfter}} {
		if present[f.name] {
			*f.to = f.v
		}
	}
	o, err := c.api.store.UpdateOrg(c.r.Context(), org, ch, c.caller.Actor())
	if err != nil {
		return err
	}
	beyond, more, err := c.api.store.TokensBeyond(c.r.Context(), o)
	if err != nil {
		return err
	}
	out := struct {
		orgView
		TokensBeyond []tokenBeyond `json:"tokens_beyond_max_lifetime,omitempty"`
		More         bool          `json:"more_tokens_beyond,omitempty"`
	}{orgView: viewOrg(o), More: more}
	for _, t := range beyond {
		out.TokensBeyond = append(out.TokensBeyond, tokenBeyond{User: t.User, Token: t.ID, Name: t.Name, ExpiresAt: t.ExpiresAt})
	}
	return c.changed(http.StatusOK, store.ActionOrgUpdate, org, out)
}

// tokenBeyond is a live token that outlives its organization's
// max_token_lifetime.
type tokenBeyond struct {
	User      string     `json:"user"`
	Token     string     `json:"token"`
	Name      string     `json:"name,omitempty"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// POST /orgs/{org}/accounts {"name", "id"?}
func createAccount(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if err := sc.orgOnly("create accounts"); err != nil {
		return err
	}
	in := store.Account{Org: org}
	if err := c.decode(fields{"name": &in.Name, "id": &in.ID}, "name"); err != nil {
		return err
	}
	a, err := c.api.store.CreateAccount(c.r.Context(), in, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusCreated, store.ActionAccountCreate, a.ID, viewAccount(a))
}

// GET /orgs/{org}/accounts: account admins see their own account only.
func listAccounts(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if _, err := query(c.r.URL); err != nil {
		return err
	}
	accounts, err := c.api.store.ListAccounts(c.r.Context(), org)
	if err != nil {
		return err
	}
	out := []accountView{}
	for i := range accounts {
		if sc.orgWide() || accounts[i].ID == sc.account {
			out = append(out, viewAccount(&accounts[i]))
		}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"accounts": out})
	return nil
}

// GET /orgs/{org}/accounts/{act}
func getAccount(c *call) error {
	org, act := c.params["org"], c.params["act"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if !sc.orgWide() && act != sc.account {
		return forbidden("account-level admins see only their own account")
	}
	a, err := c.api.store.GetAccount(c.r.Context(), org, act)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, viewAccount(a))
	return nil
}

// DELETE /orgs/{org}/accounts/{act}: 409 while account-level users or
// policies belong to it; see store.DeleteAccount.
func deleteAccount(c *call) error {
	org, act := c.params["org"], c.params["act"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if err := sc.orgOnly("delete accounts"); err != nil {
		return err
	}
	if err := c.api.store.DeleteAccount(c.r.Context(), org, act, c.caller.Actor()); errors.Is(err, store.ErrUnavailable) {
		// The deletion takes several transactions: the first may have
		// committed.
		return &apiError{code: errcode.StoreUnavailable,
			msg: "the store cannot be reached; the account may be deleted in part: send the DELETE again to finish"}
	} else if err != nil {
		return err
	}
	return c.changed(http.StatusNoContent, store.ActionAccountDelete, act, nil)
}

// decode reads the body into the given fields and checks that the
// required ones are present.
func (c *call) decode(dst fields, required ...string) error {
	_, err := c.decodePresent(dst, required...)
	return err
}

func (c *call) decodePresent(dst fields, required ...string) (map[string]bool, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return nil, err
	}
	present, err := decodeObject(body, dst)
	if err != nil {
		return nil, err
	}
	for _, f := range required {
		if !present[f] {
			return nil, invalid(f, "is required")
		}
	}
	return present, nil
}
