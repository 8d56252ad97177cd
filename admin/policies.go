package admin

import (
	"net/http"

	"github.com/tokengate/tokengate/module/store"
)

// policyFields are the fields of a policy document.
func policyFields(p *store.Policy) fields {
	return fields{"name": &p.Name, "description": &p.Description, "statements": &p.Statements, "account": &p.Account}
}

// POST /orgs/{org}/policies: account admins create policies of their own
// account (the account may be left out).
func createPolicy(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	in := store.Policy{Org: org}
	if err := c.decode(policyFields(&in), "name", "statements"); err != nil {
		return err
	}
	if err := sc.policyAccount(&in); err != nil {
		return err
	}
	p, err := c.api.store.CreatePolicy(c.r.Context(), in, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusCreated, store.ActionPolicyCreate, p.ID, viewPolicy(p))
}

// policyAccount places an account admin's policy in its account.
func (s scope) policyAccount(p *store.Policy) error {
	if s.orgWide() {
		return nil
	}
	if p.Account == "" {
		p.Account = s.account
	}
	if p.Account != s.account {
		return forbidden("account-level admins manage only their own account's policies")
	}
	return nil
}

// GET /orgs/{org}/policies
func listPolicies(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if _, err := query(c.r.URL); err != nil {
		return err
	}
	policies, err := c.api.store.ListPolicies(c.r.Context(), org)
	if err != nil {
		return err
	}
	out := []policyView{}
	for i := range policies {
		if sc.readsPolicy(&policies[i]) {
			out = append(out, viewPolicy(&policies[i]))
		}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"policies": out})
	return nil
}

// GET /orgs/{org}/policies/{pol}
func getPolicy(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	p, err := c.api.store.GetPolicy(c.r.Context(), org, c.params["pol"])
	if err != nil {
		return err
	}
	if !sc.readsPolicy(p) {
		return forbidden("this policy belongs to another account")
	}
	writeJSON(c.w, http.StatusOK, viewPolicy(p))
	return nil
}

// PUT /orgs/{org}/policies/{pol}: replaces the document.
func replacePolicy(c *call) error {
	org, id := c.params["org"], c.params["pol"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	var doc store.Policy
	if err := c.decode(policyFields(&doc), "name", "statements"); err != nil {
		return err
	}
	if err := sc.policyAccount(&doc); err != nil {
		return err
	}
	p, err := c.api.store.ReplacePolicyChecked(c.r.Context(), org, id, doc, sc.mayChangePolicy, c.caller.mayRewritePolicy, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusOK, store.ActionPolicyUpdate, p.ID, viewPolicy(p))
}

// mayChangePolicy checks that the scope may change or delete a policy as
// stored: account admins only their account's. Who owns a policy can
// change at any time, so the store runs this inside the transaction that
// writes, on the policy read there.
func (s scope) mayChangePolicy(old *store.Policy) error {
	if !s.managesPolicy(old) {
		return forbidden("account-level admins manage only their own account's policies")
	}
	return nil
}

// DELETE /orgs/{org}/policies/{pol}: 409 while users hold it.
func deletePolicy(c *call) error {
	org, id := c.params["org"], c.params["pol"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	if err := c.api.store.DeletePolicy(c.r.Context(), org, id, sc.mayChangePolicy, c.caller.Actor()); err != nil {
		return err
	}
	return c.changed(http.StatusNoContent, store.ActionPolicyDelete, id, nil)
}
