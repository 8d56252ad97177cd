package store

import (
	"context"
	"encoding/hex"
	"fmt"
)

// importBatch bounds the keys written per etcd transaction, well inside
// etcd's default --max-txn-ops of 128.
const importBatch = 120

// Import writes users and tokens as given, many per etcd transaction: for
// loading data in bulk, such as a migration from another system or a
// benchmark. It skips what CreateUser does per user — revision guards
// against concurrent admins, reference checks, audit events — so it is only
// for a quiet prefix: the users must be valid (ValidateUser), their
// organization, accounts and policies must exist, and every token must name
// its user and organization.
func (s *Store) Import(ctx context.Context, users []User, tokens []NewToken) error {
	var w writes
	flush := func() error {
		if w.err != nil {
			return w.err
		}
		if len(w.ops) == 0 {
			return nil
		}
		_, err := s.commit(opTxn, s.client.Txn(ctx).Then(w.ops...))
		w.ops = w.ops[:0]
		return storeError(err)
	}
	for i := range users {
		u := &users[i]
		if !ValidUserID(u.ID) {
			return &FieldError{fmt.Sprintf("users[%d].id", i), "must look like u-0123456789ab"}
		}
		if err := ValidateUser(u); err != nil {
			return err
		}
		w.put(s.userKey(u.Org, u.ID), u)
		if len(w.ops) >= importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	byID := make(map[string]*User, len(users))
	for i := range users {
		byID[s.userKey(users[i].Org, users[i].ID)] = &users[i]
	}
	for i := range tokens {
		t := &tokens[i].Token
		if !ValidOrgID(t.Org) || !ValidUserID(t.User) || !ValidTokenID(t.ID) {
			return &FieldError{fmt.Sprintf("tokens[%d]", i), "must name its organization, user and id"}
		}
		if err := checkText(fmt.Sprintf("tokens[%d].name", i), t.Name, MaxNameLen, false); err != nil {
			return err
		}
		t.Hash = hex.EncodeToString(tokens[i].Hash[:])
		w.put(s.userTokenKey(t.Org, t.User, t.ID), t)
		w.put(s.tokenKeyHex(t.Hash), refOf(t, byID[s.userKey(t.Org, t.User)]))
		if len(w.ops) >= importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
