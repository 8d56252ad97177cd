package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Account ids are unique across the whole store, whatever the
// organization: upstreams receive X-Tokengate-Account-Id alone and may key
// their data on it, so an organization choosing another's id would be
// handed the other's data.
//
// The index /accountids/<act> holds the organization an id belongs to. It
// is written in the transaction that creates the account, guarded by the
// entry's absence, so of two organizations creating one id at once exactly
// one commits. It stays when the account is deleted: an id never passes to
// another organization (the upstream's data of the deleted account would
// go with it), and only the organization that held it may create it again.
//
// Stores written before the index existed hold accounts without an entry.
// The first account creation of each process makes sure the index is
// complete: when the marker /accountids is absent it reads every account
// key once (keys only) and writes the missing entries, each guarded by its
// absence, then the marker. An id that two organizations already share is
// bound to the one whose account is older; the other keeps its account
// until an operator deletes it (see the README).

// accountOwner is the value of an account id's index entry.
type accountOwner struct {
	Org string `json:"org"`
}

// accountIndex remembers that this process found the index complete.
type accountIndex struct {
	mu    sync.Mutex
	built bool
}

// maxIDDraws bounds the generated ids tried for one account: 32 random
// bits make a second draw rare, a tenth one never needed.
const maxIDDraws = 10

// indexBatch bounds the entries written per transaction while building the
// index. Each is a nested transaction, which etcd counts against what is
// left of --max-txn-ops (default 128) after the outer one's operations.
const indexBatch = 60

// indexAccountIDs makes sure every account id has its index entry; after
// the first success it costs nothing.
func (s *Store) indexAccountIDs(ctx context.Context) error {
	s.accountIDs.mu.Lock()
	defer s.accountIDs.mu.Unlock()
	if s.accountIDs.built {
		return nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, s.accountIDsBuiltKey())
	if err != nil {
		return unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		if err := s.buildAccountIndex(ctx); err != nil {
			return err
		}
	}
	s.accountIDs.built = true
	return nil
}

// buildAccountIndex writes the entries of accounts that have none, then
// the marker saying the index is complete. Entries are written only where
// none exists, so a concurrent creation or a second process building at the
// same time is never overwritten.
func (s *Store) buildAccountIndex(ctx context.Context) error {
	accounts, err := s.get(ctx, opRead, s.prefix+"/accounts/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return unavailable(err)
	}
	indexed, err := s.get(ctx, opRead, s.accountIDsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return unavailable(err)
	}
	have := map[string]bool{}
	for _, kv := range indexed.Kvs {
		have[strings.TrimPrefix(string(kv.Key), s.accountIDsPrefix())] = true
	}
	// The first holder of each id, by when its account was created.
	type holder struct {
		org string
		rev int64
	}
	first := map[string]holder{}
	for _, kv := range accounts.Kvs {
		org, id, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), s.prefix+"/accounts/"), "/")
		if !ok || !ValidOrgID(org) || !ValidAccountID(id) || have[id] {
			continue
		}
		if h, seen := first[id]; !seen || kv.CreateRevision < h.rev {
			first[id] = holder{org, kv.CreateRevision}
		}
	}
	for batch := range slices.Chunk(slices.Sorted(maps.Keys(first)), indexBatch) {
		ops := make([]clientv3.Op, 0, len(batch))
		for _, id := range batch {
			put, err := putJSON(s.accountIDKey(id), accountOwner{Org: first[id].org})
			if err != nil {
				return err
			}
			absent := clientv3.Compare(clientv3.CreateRevision(s.accountIDKey(id)), "=", 0)
			ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{absent}, []clientv3.Op{put}, nil))
		}
		if _, err := s.commit(opTxn, s.client.Txn(ctx).Then(ops...)); err != nil {
			return storeError(err)
		}
	}
	_, err = s.client.Put(ctx, s.accountIDsBuiltKey(), s.Now().UTC().Format(time.RFC3339))
	return unavailable(err)
}

// claimAccountID checks, inside the transaction creating account id in
// org, that the id is free for org, and adds the writes that claim it. An
// id is free when no organization has claimed it, or when org claimed it,
// has no account of that id now, and none of its users still lists it (see
// DeleteAccount).
func (r *snapshot) claimAccountID(w *writes, org, id string) error {
	var owner accountOwner
	found, err := r.getJSON(r.s.accountIDKey(id), &owner)
	if err != nil {
		return err
	}
	if found && owner.Org != org {
		return &ConflictError{fmt.Sprintf("account id %s is taken: account ids are unique across organizations", id)}
	}
	if kv, err := r.get(r.s.accountKey(org, id)); err != nil {
		return err
	} else if kv != nil {
		return &ConflictError{fmt.Sprintf("account %s already exists", id)}
	}
	if !found {
		w.put(r.s.accountIDKey(id), accountOwner{Org: org})
		return nil
	}
	// The organization's own id, deleted: free once no user lists it any
	// more, or the new account would reach them at once.
	kvs, err := r.list(r.s.usersPrefix(org))
	if err != nil {
		return err
	}
	users, err := decodeAll[User](kvs)
	if err != nil {
		return err
	}
	listing := 0
	for _, u := range users {
		if slices.Contains(u.Accounts, id) {
			listing++
		}
	}
	if listing > 0 {
		return &ConflictError{fmt.Sprintf("account %s was deleted and %d users still list it; delete it again to finish", id, listing)}
	}
	return nil
}
