package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/tokengate/tokengate/module/token"
)

// A restarted gateway meets its active tokens cold at once. The last-use
// times say which tokens are active: RecentlyUsed lists them and
// LookupUsed reads their records and users many per request, so that a
// gateway fills its cache before the requests arrive.

// RecentUse is a token the last-use times say was used at At.
type RecentUse struct {
	Org, User, Token string
	At               time.Time
}

// RecentlyUsed lists the tokens last used at or after since, newest first,
// at most limit of them: the last-use times of this schema and the one
// before, read page keys to a request.
func (s *Store) RecentlyUsed(ctx context.Context, since time.Time, limit int, page int64) ([]RecentUse, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	latest := make(map[[3]string]time.Time)
	for _, root := range []string{s.lastUsedRoot(), s.legacyLastUsedPrefix()} {
		var rev int64
		err := s.pages(ctx, root, &rev, page, false, func(kv *mvccpb.KeyValue) error {
			at, ok := parseLastUsed(kv.Value)
			if !ok || at.Before(since) {
				return nil // a damaged time is only a missing time
			}
			parts := strings.Split(strings.TrimPrefix(string(kv.Key), root), "/")
			if len(parts) != 3 || !ValidOrgID(parts[0]) || !ValidUserID(parts[1]) || !ValidTokenID(parts[2]) {
				return nil
			}
			if k := [3]string(parts); at.After(latest[k]) {
				latest[k] = at
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	uses := make([]RecentUse, 0, len(latest))
	for k, at := range latest {
		uses = append(uses, RecentUse{Org: k[0], User: k[1], Token: k[2], At: at})
	}
	slices.SortFunc(uses, func(a, b RecentUse) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.Token, b.Token))
	})
	return uses[:min(len(uses), max(limit, 0))], nil
}

// usedBatch is how many tokens one request of LookupUsed reads: a record
// and a user each stay within etcd's default of 128 operations a
// transaction.
const usedBatch = 60

// LookupUsed looks up the tokens uses names, usedBatch of them per etcd
// request: each token's record and its user, read in one transaction, then
// the user's accounts and policies as LookupTokenIn takes them (from d when
// ready). fn receives the lookup of every token still there, with the
// index of its use and its digest; tokens or users gone meanwhile are
// left out. It stops at the first error.
//
// The token's reference (its digest's key) is not read: it is written and
// removed in the transactions that write and remove the record, so the
// record stands for both; its key is among the lookup's Keys all the same.
func (s *Store) LookupUsed(ctx context.Context, uses []RecentUse, d *Directory, fn func(i int, h token.Hash, l *Lookup)) error {
	for start := 0; start < len(uses); start += usedBatch {
		batch := uses[start:min(start+usedBatch, len(uses))]
		if err := s.lookupUsedBatch(ctx, start, batch, d, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) lookupUsedBatch(ctx context.Context, start int, batch []RecentUse, d *Directory, fn func(int, token.Hash, *Lookup)) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// The tokens' records, then their users, each user once.
	keys := make([]string, 0, 2*len(batch))
	userAt := make(map[string]int) // user key → its index in keys
	for _, u := range batch {
		keys = append(keys, s.userTokenKey(u.Org, u.User, u.Token))
	}
	for _, u := range batch {
		if k := s.userKey(u.Org, u.User); userAt[k] == 0 {
			userAt[k] = len(keys)
			keys = append(keys, k)
		}
	}
	s.lookups.Add(int64(len(batch)))
	kvs, rev, err := s.readKeys(ctx, 0, keys...)
	if err != nil {
		return err
	}
	for i, u := range batch {
		userKey := s.userKey(u.Org, u.User)
		l := &Lookup{Revision: rev}
		if err := l.decode(kvs[i], kvs[userAt[userKey]]); err != nil {
			return err
		}
		if !l.Found {
			continue
		}
		refKey := s.tokenKeyHex(l.Token.Hash)
		h, ok := s.TokenDigestOfKey([]byte(refKey))
		if !ok {
			continue // a record without its digest cannot be presented
		}
		l.Keys = []string{refKey, keys[i], userKey}
		if l, err = s.complete(ctx, l, d); err != nil {
			return err
		}
		fn(start+i, h, l)
	}
	return nil
}
