package store

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// NewToken is a token about to be stored: its record and the digest of the
// secret the caller shows once and then forgets.
type NewToken struct {
	Hash  token.Hash
	Token Token
}

// tokenRef is the value under /tokens/<digest>: where the token's record
// is, and a copy of the record and of its user, so that a cold lookup
// reads one key (schema 3). Every write of a record or of a user writes
// the copies with it, in its transaction; gateways of schema 2 read the
// reference and ignore the copy.
type tokenRef struct {
	Org   string   `json:"org"`
	User  string   `json:"user"`
	Token string   `json:"token"`
	Copy  *refCopy `json:"copy,omitempty"`
}

// refCopy is what a digest's key holds of the token's record and its user.
type refCopy struct {
	Token Token `json:"token"`
	User  User  `json:"user"`
}

// refOf is the value under the digest of token t of user u; u nil: without
// a copy.
func refOf(t *Token, u *User) tokenRef {
	ref := tokenRef{Org: t.Org, User: t.User, Token: t.ID}
	if u != nil {
		ref.Copy = &refCopy{Token: *t, User: *u}
		ref.Copy.Token.LastUsedAt = nil
	}
	return ref
}

// rewriteToken adds the writes that store token t of user u again — its
// record when record is set, and the reference with its copy — each only
// if the record still exists when the transaction commits: a token revoked
// meanwhile stays revoked. (One nested transaction, which etcd counts
// against what is left of --max-txn-ops after the outer one's guards.)
func (s *Store) rewriteToken(w *writes, t *Token, u *User, record bool) {
	recordKey := s.userTokenKey(t.Org, t.User, t.ID)
	var inner writes
	if record {
		inner.put(recordKey, t)
	}
	inner.put(s.tokenKeyHex(t.Hash), refOf(t, u))
	if inner.err != nil {
		w.err = cmp.Or(w.err, inner.err)
		return
	}
	w.ops = append(w.ops, clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(recordKey), ">", 0)}, inner.ops, nil))
}

// recopy adds the writes that bring the copies of user u under its
// tokens' digests up to date, guarding against tokens added or changed
// meanwhile.
func (r *snapshot) recopy(w *writes, u *User) error {
	tokens, err := r.userTokens(u.Org, u.ID)
	if err != nil {
		return err
	}
	for i := range tokens {
		r.s.rewriteToken(w, &tokens[i], u, false)
	}
	return nil
}

// putToken adds the writes that store a new token of user u, guarding
// against its digest being present already, within its organization's
// max_token_lifetime.
func (r *snapshot) putToken(w *writes, nt *NewToken, u *User) error {
	t := &nt.Token
	if !ValidTokenID(t.ID) {
		return fmt.Errorf("store: token id %q is not a token id", t.ID)
	}
	// The organization's bound on lifetimes, as it is when the token is
	// written.
	var o Org
	if _, err := r.getJSON(r.s.orgKey(t.Org), &o); err != nil {
		return err
	}
	if err := o.boundLifetime(t, r.s.Now()); err != nil {
		return err
	}
	t.Hash = hex.EncodeToString(nt.Hash[:])
	ref := r.s.tokenKeyHex(t.Hash)
	if kv, err := r.get(ref); err != nil {
		return err
	} else if kv != nil {
		return &ConflictError{"token already exists"}
	}
	w.put(r.s.userTokenKey(t.Org, t.User, t.ID), t)
	w.put(ref, refOf(t, u))
	return nil
}

// userTokens reads a user's token records, guarding against additions.
func (r *snapshot) userTokens(org, user string) ([]Token, error) {
	kvs, err := r.list(r.s.userTokensPrefix(org, user))
	if err != nil {
		return nil, err
	}
	return decodeAll[Token](kvs)
}

// Rotation makes a new token replace an old one: the old token keeps
// working for Overlap, then stops (at once when Overlap is zero).
type Rotation struct {
	Replaces string
	Overlap  time.Duration
}

// CreateToken stores a new token of an existing user, optionally replacing
// another of the user's tokens. Expired tokens of the user are removed in
// the same transaction.
func (s *Store) CreateToken(ctx context.Context, nt NewToken, rot *Rotation, by Actor) (*Token, error) {
	return s.CreateTokenChecked(ctx, nt, rot, nil, by)
}

// CreateTokenChecked is CreateToken with a check of the caller's: when not
// nil, it decides whether the caller may take a token of the user as
// stored. It runs inside the transaction that writes, on a copy of the user
// read there, before anything else is decided, and again each time the
// transaction retries after a concurrent change, so it always judges the
// user the token is written for; its error is returned as is, with nothing
// written and no audit event.
func (s *Store) CreateTokenChecked(ctx context.Context, nt NewToken, rot *Rotation, check func(u *User) error, by Actor) (*Token, error) {
	t := &nt.Token
	if !ValidOrgID(t.Org) || !ValidUserID(t.User) {
		return nil, &NotFoundError{"user " + t.User}
	}
	if err := checkName("name", t.Name, false); err != nil {
		return nil, err
	}
	if rot != nil && !ValidTokenID(rot.Replaces) {
		return nil, &FieldError{"replaces", "must look like tok-0123456789ab"}
	}
	if rot != nil && rot.Overlap < 0 {
		return nil, &FieldError{"overlap", "must not be negative"}
	}
	named := t.Name != ""
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var u User
		if found, err := r.getJSON(s.userKey(t.Org, t.User), &u); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"user " + t.User}
		}
		if check != nil {
			if err := check(u.clone()); err != nil {
				return nil, callerError{err}
			}
		}
		existing, err := r.userTokens(t.Org, t.User)
		if err != nil {
			return nil, err
		}
		now := s.Now().UTC()
		t.CreatedAt, t.CreatedBy = now, by
		var w writes
		live := 0
		replaced := false
		for _, old := range existing {
			switch {
			case rot != nil && old.ID == rot.Replaces:
				replaced = true
				if !named {
					t.Name = old.Name // a rotated token keeps its name unless given another
				}
				if rot.Overlap == 0 || old.Expired(now) {
					s.delToken(&w, &old)
					continue
				}
				// The replaced token is on its way out: it does not count
				// against the limit, so rotating never needs a free slot.
				until := now.Add(rot.Overlap)
				if old.ExpiresAt == nil || until.Before(*old.ExpiresAt) {
					old.ExpiresAt = &until
				}
				old.ReplacedBy = t.ID
				s.rewriteToken(&w, &old, &u, true)
			case old.Expired(now):
				s.delToken(&w, &old)
			default:
				live++
			}
		}
		if rot != nil && !replaced {
			return nil, &FieldError{"replaces", fmt.Sprintf("token %s is not a live token of user %s", rot.Replaces, t.User)}
		}
		if live >= MaxTokensPerUser {
			return nil, &ConflictError{fmt.Sprintf("user %s already has %d tokens; revoke one first", t.User, live)}
		}
		if err := r.putToken(&w, &nt, &u); err != nil {
			return nil, err
		}
		return s.withEvent(&w, Event{Org: t.Org, Actor: by, Action: ActionTokenCreate, Target: t.ID, Account: u.Account, User: t.User})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ListTokens returns a user's tokens, ordered by ID, with when each was
// last used.
func (s *Store) ListTokens(ctx context.Context, org, user string) ([]Token, error) {
	if _, err := s.GetUser(ctx, org, user); err != nil {
		return nil, err
	}
	tokens, err := listAll[Token](ctx, s, s.userTokensPrefix(org, user))
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	used, err := s.lastUsed(ctx, org, user)
	if err != nil {
		return nil, err
	}
	clients, err := s.lastClients(ctx, org, user)
	if err != nil {
		return nil, err
	}
	for i := range tokens {
		if t, ok := used[tokens[i].ID]; ok {
			tokens[i].LastUsedAt = &t
		}
		if c, ok := clients[tokens[i].ID]; ok {
			tokens[i].LastClient = &c
		}
	}
	return tokens, nil
}

// RevokeToken deletes a token: it stops working at once.
func (s *Store) RevokeToken(ctx context.Context, org, user, id string, by Actor) error {
	if !ValidOrgID(org) || !ValidUserID(user) || !ValidTokenID(id) {
		return &NotFoundError{"token " + id}
	}
	return s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var t Token
		if found, err := r.getJSON(s.userTokenKey(org, user, id), &t); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"token " + id}
		}
		var u User
		if _, err := r.getJSON(s.userKey(org, user), &u); err != nil {
			return nil, err
		}
		var w writes
		s.delToken(&w, &t)
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionTokenRevoke, Target: id, Account: u.Account, User: user})
	})
}

// delToken adds the writes that remove a token: its record, its digest,
// its last-use time and client and its expiry warnings.
func (s *Store) delToken(w *writes, t *Token) {
	w.del(s.userTokenKey(t.Org, t.User, t.ID))
	w.del(s.tokenKeyHex(t.Hash))
	w.del(s.lastUsedKey(t.Org, t.User, t.ID))
	w.del(s.lastClientKey(t.Org, t.User, t.ID))
	w.del(s.legacyLastUsedKey(t.Org, t.User, t.ID))
	w.del(s.expiringKey(t.Org, t.User, t.ID))
}

func decodeRef(b []byte) (tokenRef, error) {
	var ref tokenRef
	if err := json.Unmarshal(b, &ref); err != nil {
		return ref, err
	}
	if !ValidOrgID(ref.Org) || !ValidUserID(ref.User) || !ValidTokenID(ref.Token) {
		return ref, fmt.Errorf("token reference %+v is damaged", ref)
	}
	return ref, nil
}
