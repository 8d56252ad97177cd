package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// Lookup is everything a verification needs to know about a token, read at
// one etcd revision.
type Lookup struct {
	// Revision is the etcd revision the data was read at.
	Revision int64
	// Found is false when no token has this digest, or its user is gone.
	Found bool
	Token Token
	User  User
	// Policies are the user's policies that exist, in the user's order,
	// then those only its proposed rights name.
	Policies []Policy
	// Accounts are the accounts the user reaches that exist, in the user's
	// order (the one account of an account-level user), then those only its
	// proposed rights name.
	Accounts []string
	// Keys are the etcd keys the result was derived from: a change to any
	// of them may change the verdict.
	Keys []string
	// FromDirectory: the policies and accounts came from a Directory, as
	// of the revision it had reached, not from etcd at Revision; their
	// keys are DirectoryKeys, not in Keys.
	FromDirectory bool
	DirectoryKeys []string
	// FromCopy: the token's record and its user came from the copy under
	// the token's digest (schema 3), as its writer wrote them.
	FromCopy bool
}

// LookupToken reads the token with the given digest, its user, and the
// user's policies and accounts, all at the revision of the first read. It
// costs one to three etcd round trips and counts as one lookup in Stats.
func (s *Store) LookupToken(ctx context.Context, h token.Hash) (*Lookup, error) {
	return s.LookupTokenIn(ctx, h, nil)
}

// lookupUser reads the token's reference and, from the copy it holds, the
// token's record and its user: one round trip. Without a copy to trust (a
// store not yet at schema 3, or a reference written by an older gateway)
// it reads the record and the user at the reference's revision: a second.
// Found when all three exist.
func (s *Store) lookupUser(ctx context.Context, h token.Hash) (*Lookup, error) {
	refKey := s.tokenKey(h)
	resp, err := s.get(ctx, opLookup, refKey)
	if err != nil {
		return nil, unavailable(err)
	}
	l := &Lookup{Revision: resp.Header.Revision, Keys: []string{refKey}}
	if len(resp.Kvs) == 0 {
		return l, nil
	}
	ref, err := decodeRef(resp.Kvs[0].Value)
	if err != nil {
		return nil, err
	}

	recordKey, userKey := s.userTokenKey(ref.Org, ref.User, ref.Token), s.userKey(ref.Org, ref.User)
	// The record's and the user's keys stay among the verdict's: a write
	// to either rewrites the copy too, and the watch hears of both.
	l.Keys = append(l.Keys, recordKey, userKey)
	if c := ref.Copy; c != nil && s.copiesUsable(ref.Org, ref.User) && c.Token.ID == ref.Token && c.User.ID == ref.User {
		l.Token, l.User, l.Found, l.FromCopy = c.Token, c.User, true, true
		// Trusting the copy depends on the schema: a store moved back
		// to version 2 makes the verdict news.
		l.Keys = append(l.Keys, s.schemaKey())
		s.copyLookups.Add(1)
		return l, nil
	}
	kvs, err := s.readAt(ctx, l.Revision, recordKey, userKey)
	if err != nil {
		return nil, err
	}
	if err := l.decode(kvs[0], kvs[1]); err != nil {
		return nil, err
	}
	return l, nil
}

// decode fills in the token's record and its user from their keys' values
// and makes l Found; when either is missing (nil) l stays not found.
func (l *Lookup) decode(record, user *mvccpb.KeyValue) error {
	if record == nil || user == nil {
		return nil
	}
	if err := json.Unmarshal(record.Value, &l.Token); err != nil {
		return fmt.Errorf("decoding %s: %v", record.Key, err)
	}
	if err := json.Unmarshal(user.Value, &l.User); err != nil {
		return fmt.Errorf("decoding %s: %v", user.Key, err)
	}
	l.Found = true
	return nil
}

// reaches are the accounts a user reaches: the one of an account-level
// user, the listed ones of an organization-level user.
func (u *User) reaches() []string {
	if u.Level == LevelAccount {
		return []string{u.Account}
	}
	return u.Accounts
}

// refs are the policies and accounts a verdict on the user reads: its own,
// then those only its proposed rights name.
func (u *User) refs() (policies, accounts []string) {
	policies, accounts = u.Policies, u.reaches()
	if shadow := u.WithProposed(); shadow != nil {
		for _, p := range shadow.Policies {
			if !slices.Contains(policies, p) {
				policies = append(slices.Clip(policies), p)
			}
		}
		for _, a := range shadow.reaches() {
			if !slices.Contains(accounts, a) {
				accounts = append(slices.Clip(accounts), a)
			}
		}
	}
	return policies, accounts
}

// lookupRest reads a found user's policies and accounts at the lookup's
// revision.
func (s *Store) lookupRest(ctx context.Context, l *Lookup) (*Lookup, error) {
	u := &l.User
	policyIDs, accounts := u.refs()
	var keys []string
	for _, p := range policyIDs {
		keys = append(keys, s.policyKey(u.Org, p))
	}
	for _, a := range accounts {
		keys = append(keys, s.accountKey(u.Org, a))
	}
	l.Keys = append(l.Keys, keys...)
	if len(keys) == 0 {
		return l, nil
	}
	kvs, err := s.readAt(ctx, l.Revision, keys...)
	if err != nil {
		return nil, err
	}
	for i := range policyIDs {
		if kvs[i] == nil {
			continue
		}
		var p Policy
		if err := json.Unmarshal(kvs[i].Value, &p); err != nil {
			return nil, fmt.Errorf("decoding %s: %v", kvs[i].Key, err)
		}
		l.Policies = append(l.Policies, p)
	}
	for i, a := range accounts {
		if kvs[len(policyIDs)+i] != nil {
			l.Accounts = append(l.Accounts, a)
		}
	}
	return l, nil
}

// readAt reads keys at revision rev in one transaction; absent keys come
// back as nil.
func (s *Store) readAt(ctx context.Context, rev int64, keys ...string) ([]*mvccpb.KeyValue, error) {
	kvs, _, err := s.readKeys(ctx, rev, keys...)
	return kvs, err
}

// readKeys reads keys in one transaction, at revision rev (0: the latest);
// absent keys come back as nil. It also returns the revision of the
// answer's header: the one read at, when rev is 0.
func (s *Store) readKeys(ctx context.Context, rev int64, keys ...string) ([]*mvccpb.KeyValue, int64, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k, clientv3.WithRev(rev))
	}
	s.rangeRPCs.Add(1)
	resp, err := s.commit(opLookup, s.client.Txn(ctx).Then(ops...))
	if err != nil {
		return nil, 0, unavailable(err)
	}
	out := make([]*mvccpb.KeyValue, len(keys))
	for i, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			out[i] = rr.Kvs[0]
		}
	}
	return out, resp.Header.Revision, nil
}
