package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// ReasonReported is the reason of the audit event of a token revoked
// because someone reported it as leaked.
const ReasonReported = "reported"

// readBatch is how many digests one existence check reads: one etcd
// transaction each, well under etcd's default limit of 128 operations.
const readBatch = 100

// RevokeReported revokes the tokens, among digests, that exist: tokens
// reported as leaked by reporter (the client IP the report came from).
// Each is deleted in its own revision-guarded transaction with an audit
// event token.revoke in the token's organization, actor {reporter,
// "reporter"}, reason "reported". Digests of no token are skipped without
// a trace. It returns the tokens it revoked; on an error, digests not yet
// looked at are left as they are.
func (s *Store) RevokeReported(ctx context.Context, digests []token.Hash, reporter string) ([]Token, error) {
	if reporter == "" {
		return nil, errors.New("store: a report needs its reporter")
	}
	by := Actor{ID: reporter, Type: ActorReporter}
	live, err := s.existingDigests(ctx, digests)
	if err != nil {
		return nil, err
	}
	var revoked []Token
	var errs []error
	for _, h := range live {
		t, err := s.revokeDigest(ctx, h, by)
		switch {
		case err != nil:
			errs = append(errs, err)
		case t != nil:
			revoked = append(revoked, *t)
		}
	}
	return revoked, errors.Join(errs...)
}

// existingDigests returns, sorted and without repeats, the digests that
// name a token, reading their keys (keys only) in batches.
func (s *Store) existingDigests(ctx context.Context, digests []token.Hash) ([]token.Hash, error) {
	sorted := slices.Clone(digests)
	slices.SortFunc(sorted, func(a, b token.Hash) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var out []token.Hash
	for batch := range slices.Chunk(sorted, readBatch) {
		ops := make([]clientv3.Op, len(batch))
		for i, h := range batch {
			ops[i] = clientv3.OpGet(s.tokenKey(h), clientv3.WithKeysOnly())
		}
		s.rangeRPCs.Add(1)
		resp, err := s.commit(opRead, s.client.Txn(ctx).Then(ops...))
		if err != nil {
			return nil, storeError(err)
		}
		for i, r := range resp.Responses {
			if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				out = append(out, batch[i])
			}
		}
	}
	return out, nil
}

// revokeDigest deletes the token with digest h, if there still is one,
// and returns it (nil when there was none).
func (s *Store) revokeDigest(ctx context.Context, h token.Hash, by Actor) (*Token, error) {
	var revoked *Token
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		revoked = nil
		kv, err := r.get(s.tokenKey(h))
		if err != nil || kv == nil {
			return nil, err // revoked meanwhile: nothing to do
		}
		ref, err := decodeRef(kv.Value)
		if err != nil {
			return nil, err
		}
		var t Token
		if found, err := r.getJSON(s.userTokenKey(ref.Org, ref.User, ref.Token), &t); err != nil || !found {
			return nil, err // a reference without its record admits no one
		}
		if t.Hash != hex.EncodeToString(h[:]) {
			return nil, fmt.Errorf("token %s: its record does not hold the digest that names it", t.ID)
		}
		var u User
		if _, err := r.getJSON(s.userKey(ref.Org, ref.User), &u); err != nil {
			return nil, err
		}
		var w writes
		s.delToken(&w, &t)
		revoked = &t
		return s.withEvent(&w, Event{Org: ref.Org, Actor: by, Action: ActionTokenRevoke, Target: t.ID,
			Account: u.Account, User: t.User, Reason: ReasonReported})
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}
