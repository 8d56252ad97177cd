package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// userBatch bounds the users read per transaction when an account is
// removed from them, and txnBudget the writes: each user read is one
// guard, each user rewritten one write, the copies under its tokens'
// digests one nested write each, and the guard of its tokens. Guards and
// writes each stay well inside etcd's default --max-txn-ops of 128, which
// leaves room for the nested writes.
const (
	userBatch = 40
	txnBudget = 120
)

// DeleteAccount deletes an account. It refuses while account-level users or
// policies belong to the account.
//
// The account's key goes first, in one transaction with the audit event:
// every verdict reads the accounts a user reaches from their keys (see
// LookupToken), so access through the account ends at that revision,
// whatever users still list it. Then organization-level users that list it
// lose it, in batches of transactions (dropAccountFromUsers), however many
// they are. Should that be cut short (etcd gone meanwhile), the users left
// listing the account reach nothing through it, lose it on their next
// change, and keep the organization from creating the id again; calling
// DeleteAccount again finishes the removal and returns nil, as the first
// call would have.
func (s *Store) DeleteAccount(ctx context.Context, org, id string, by Actor) error {
	if !ValidOrgID(org) || !ValidAccountID(id) {
		return &NotFoundError{"account " + id}
	}
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		return r.deleteAccount(org, id, by)
	})
	if errors.Is(err, ErrNotFound) {
		if n, cerr := s.dropAccountFromUsers(ctx, org, id); cerr != nil || n > 0 {
			return cerr
		}
		return err
	}
	if err != nil {
		return err
	}
	_, err = s.dropAccountFromUsers(ctx, org, id)
	return err
}

// deleteAccount builds the transaction deleting the account's key and
// writing its audit event, once no account-level user or policy belongs to
// it.
func (r *snapshot) deleteAccount(org, id string, by Actor) ([]clientv3.Op, error) {
	s := r.s
	if err := r.mustExist(s.accountKey(org, id), "account "+id); err != nil {
		return nil, err
	}
	userKVs, err := r.list(s.usersPrefix(org))
	if err != nil {
		return nil, err
	}
	users, err := decodeAll[User](userKVs)
	if err != nil {
		return nil, err
	}
	policyKVs, err := r.list(s.policiesPrefix(org))
	if err != nil {
		return nil, err
	}
	policies, err := decodeAll[Policy](policyKVs)
	if err != nil {
		return nil, err
	}
	var holders []string
	for _, u := range users {
		if u.Level == LevelAccount && u.Account == id {
			holders = append(holders, "user "+u.ID)
		}
	}
	for _, p := range policies {
		if p.Account == id {
			holders = append(holders, "policy "+p.ID)
		}
	}
	if len(holders) > 0 {
		return nil, &ConflictError{fmt.Sprintf("account %s still has %s", id, summarize(holders))}
	}
	var w writes
	w.del(s.accountKey(org, id))
	// An account of an older store may have no index entry yet: its id
	// stays this organization's once the account is gone.
	if kv, err := r.get(s.accountIDKey(id)); err != nil {
		return nil, err
	} else if kv == nil {
		w.put(s.accountIDKey(id), accountOwner{Org: org})
	}
	return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionAccountDelete, Target: id, Account: id})
}

// dropAccountFromUsers removes the account id, whose key is gone, from the
// accounts of the organization's users that list it, and returns how many
// it changed. Each batch is one transaction guarded by the revisions of the
// users it rewrites, so a concurrent change to one of them is read again
// rather than lost, and by the account's absence: should the organization
// create the id again meanwhile (possible only once no user lists it), the
// removal stops there. It writes no audit event: the deletion's
// account.delete is the record.
func (s *Store) dropAccountFromUsers(ctx context.Context, org, id string) (int, error) {
	listCtx, cancel := withTimeout(ctx)
	resp, err := s.get(listCtx, opRead, s.usersPrefix(org), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return 0, unavailable(err)
	}
	users, err := decodeAll[User](resp.Kvs)
	if err != nil {
		return 0, err
	}
	var keys []string
	for _, u := range users {
		if u.Level == LevelOrganization && slices.Contains(u.Accounts, id) {
			keys = append(keys, s.userKey(org, u.ID))
		}
	}
	total := 0
	for len(keys) > 0 {
		changed, took, recreated := 0, 0, false
		err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
			changed, took, recreated = 0, 0, false
			if kv, err := r.get(s.accountKey(org, id)); err != nil || kv != nil {
				recreated = kv != nil
				return nil, err
			}
			batch := keys[:min(len(keys), userBatch)]
			kvs, err := r.getAll(batch)
			if err != nil {
				return nil, err
			}
			var w writes
			now := s.Now().UTC()
			for _, kv := range kvs {
				var u User
				if kv == nil {
					took++
					continue // deleted meanwhile
				}
				if err := json.Unmarshal(kv.Value, &u); err != nil {
					return nil, fmt.Errorf("decoding %s: %v", kv.Key, err)
				}
				i := slices.Index(u.Accounts, id)
				if i < 0 {
					took++
					continue
				}
				u.Accounts = slices.Delete(u.Accounts, i, i+1)
				u.UpdatedAt = now
				var uw writes
				uw.put(string(kv.Key), u)
				if err := r.recopy(&uw, &u); err != nil {
					return nil, err
				}
				// Users that do not fit wait for the next transaction;
				// the first always fits (MaxTokensPerUser).
				if took > 0 && len(w.ops)+len(uw.ops) > txnBudget {
					break
				}
				w.ops = append(w.ops, uw.ops...)
				w.err = cmp.Or(w.err, uw.err)
				took++
				changed++
			}
			return w.ops, w.err
		})
		if err != nil || recreated {
			return total, err
		}
		keys = keys[took:]
		total += changed
	}
	return total, nil
}
