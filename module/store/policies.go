package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreatePolicy creates a policy; an empty ID gets a generated one.
func (s *Store) CreatePolicy(ctx context.Context, p Policy, by Actor) (*Policy, error) {
	if p.ID == "" {
		p.ID = NewPolicyID()
	} else if !ValidPolicyID(p.ID) {
		return nil, &FieldError{"id", "must look like pol-1a2b3c4d"}
	}
	if err := ValidatePolicy(&p); err != nil {
		return nil, err
	}
	p.CreatedAt, p.CreatedBy, p.UpdatedAt = s.Now().UTC(), by, time.Time{}
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if err := r.mustExist(s.orgKey(p.Org), "organization "+p.Org); err != nil {
			return nil, err
		}
		if err := r.accountsExist("account", p.Org, p.accountList()); err != nil {
			return nil, err
		}
		if kv, err := r.get(s.policyKey(p.Org, p.ID)); err != nil {
			return nil, err
		} else if kv != nil {
			return nil, &ConflictError{fmt.Sprintf("policy %s already exists", p.ID)}
		}
		var w writes
		w.put(s.policyKey(p.Org, p.ID), p)
		return s.withEvent(&w, Event{Org: p.Org, Actor: by, Action: ActionPolicyCreate, Target: p.ID, Account: p.Account})
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Policy) accountList() []string {
	if p.Account == "" {
		return nil
	}
	return []string{p.Account}
}

// GetPolicy returns a policy.
func (s *Store) GetPolicy(ctx context.Context, org, id string) (*Policy, error) {
	var p Policy
	if !ValidOrgID(org) || !ValidPolicyID(id) {
		return nil, &NotFoundError{"policy " + id}
	}
	if err := s.getJSON(ctx, s.policyKey(org, id), &p, "policy "+id); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListPolicies returns an organization's policies, ordered by ID.
func (s *Store) ListPolicies(ctx context.Context, org string) ([]Policy, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, err
	}
	return listAll[Policy](ctx, s, s.policiesPrefix(org))
}

// ReplacePolicy replaces a policy's document (name, description,
// statements, account). Users holding the policy see the change at once.
// Moving a policy to an account is refused while users of other accounts
// hold it.
//
// check, when not nil, decides whether the caller may change the policy as
// stored (for instance, who owns it): it runs inside the transaction, on
// the policy read at the transaction's revision, before anything else is
// decided; its error is returned as is, with nothing written and no audit
// event. It runs again each time the transaction retries after a
// concurrent change, so it always judges the policy that is replaced.
func (s *Store) ReplacePolicy(ctx context.Context, org, id string, doc Policy, check func(old *Policy) error, by Actor) (*Policy, error) {
	return s.ReplacePolicyChecked(ctx, org, id, doc, check, nil, by)
}

// ReplacePolicyChecked is ReplacePolicy with a check of the users holding
// the policy, run inside the writing transaction on the users as read
// there: changing a policy changes what every holder may do.
func (s *Store) ReplacePolicyChecked(ctx context.Context, org, id string, doc Policy, check func(old *Policy) error,
	checkHolders func(holders []User) error, by Actor) (*Policy, error) {
	if !ValidOrgID(org) || !ValidPolicyID(id) {
		return nil, &NotFoundError{"policy " + id}
	}
	if err := ValidatePolicy(&doc); err != nil {
		return nil, err
	}
	var out Policy
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		old, err := r.policy(org, id, check)
		if err != nil {
			return nil, err
		}
		if checkHolders != nil {
			holders, err := r.usersHolding(org, id)
			if err != nil {
				return nil, err
			}
			if err := checkHolders(holders); err != nil {
				return nil, err
			}
		}
		if doc.Account != old.Account && doc.Account != "" {
			if err := r.accountsExist("account", org, doc.accountList()); err != nil {
				return nil, err
			}
			holders, err := r.usersHolding(org, id)
			if err != nil {
				return nil, err
			}
			var outside []string
			for _, u := range holders {
				if u.Account != doc.Account {
					outside = append(outside, "user "+u.ID)
				}
			}
			if len(outside) > 0 {
				return nil, &ConflictError{fmt.Sprintf("policy %s is held by %s outside account %s", id, summarize(outside), doc.Account)}
			}
		}
		out = old
		out.Name, out.Description, out.Statements, out.Account = doc.Name, doc.Description, doc.Statements, doc.Account
		out.UpdatedAt = s.Now().UTC()
		var w writes
		w.put(s.policyKey(org, id), out)
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionPolicyUpdate, Target: id, Account: out.Account})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePolicy deletes a policy no user holds any more. check is as for
// ReplacePolicy: run inside the transaction on the policy about to be
// deleted; its error aborts the deletion.
func (s *Store) DeletePolicy(ctx context.Context, org, id string, check func(old *Policy) error, by Actor) error {
	if !ValidOrgID(org) || !ValidPolicyID(id) {
		return &NotFoundError{"policy " + id}
	}
	return s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		old, err := r.policy(org, id, check)
		if err != nil {
			return nil, err
		}
		holders, err := r.usersHolding(org, id)
		if err != nil {
			return nil, err
		}
		if len(holders) > 0 {
			ids := make([]string, len(holders))
			for i, u := range holders {
				ids[i] = "user " + u.ID
			}
			return nil, &ConflictError{fmt.Sprintf("policy %s is held by %s", id, summarize(ids))}
		}
		var w writes
		w.del(s.policyKey(org, id))
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionPolicyDelete, Target: id, Account: old.Account})
	})
}

// policy reads a policy that is about to change and runs the caller's
// check on it (when there is one), on a copy so that the check cannot
// change what is written.
func (r *snapshot) policy(org, id string, check func(old *Policy) error) (Policy, error) {
	var old Policy
	if found, err := r.getJSON(r.s.policyKey(org, id), &old); err != nil {
		return old, err
	} else if !found {
		return old, &NotFoundError{"policy " + id}
	}
	if check != nil {
		seen := old
		if err := check(&seen); err != nil {
			return old, callerError{err}
		}
	}
	return old, nil
}

// usersHolding lists the organization's users holding a policy, guarding
// against users being created or changed meanwhile.
func (r *snapshot) usersHolding(org, policy string) ([]User, error) {
	kvs, err := r.list(r.s.usersPrefix(org))
	if err != nil {
		return nil, err
	}
	users, err := decodeAll[User](kvs)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(users, func(u User) bool { return !slices.Contains(u.Policies, policy) }), nil
}

// accountsExist fails with a FieldError naming field when one of the
// accounts does not exist in the organization.
func (r *snapshot) accountsExist(field, org string, ids []string) error {
	for _, id := range ids {
		kv, err := r.get(r.s.accountKey(org, id))
		if err != nil {
			return err
		}
		if kv == nil {
			return &FieldError{field, fmt.Sprintf("account %s does not exist in organization %s", id, org)}
		}
	}
	return nil
}

// existingAccounts returns those of the accounts that exist in the
// organization, in their order, guarding against any of them changing.
func (r *snapshot) existingAccounts(org string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return ids, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.s.accountKey(org, id)
	}
	kvs, err := r.getAll(keys)
	if err != nil {
		return nil, err
	}
	var live []string
	for i, kv := range kvs {
		if kv != nil {
			live = append(live, ids[i])
		}
	}
	return live, nil
}

// policiesFit fails with a FieldError when a policy does not exist in the
// organization or is scoped to an account other than the user's.
func (r *snapshot) policiesFit(org, account string, ids []string) error {
	for _, id := range ids {
		var p Policy
		found, err := r.getJSON(r.s.policyKey(org, id), &p)
		if err != nil {
			return err
		}
		if !found {
			return &FieldError{"policies", fmt.Sprintf("policy %s does not exist in organization %s", id, org)}
		}
		if p.Account != "" && p.Account != account {
			// Not naming the account: account admins get this answer, and
			// other accounts are not theirs to learn of.
			return &FieldError{"policies", fmt.Sprintf("policy %s belongs to another account than the user's", id)}
		}
	}
	return nil
}
