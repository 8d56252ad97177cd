package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// digestPage is how many token keys one read of ScanTokenDigests returns at
// most: about 0.8 MB of keys, small enough not to hold up etcd, large
// enough that a million tokens take a few hundred reads.
var digestPage int64 = 10_000

// TokenDigestsPrefix is where the digests of every token live, one key each:
// what the verifier's filter of issued tokens is built from and follows.
func (s *Store) TokenDigestsPrefix() string { return s.prefix + "/tokens/" }

// TokenDigestOfKey returns the digest an etcd key under TokenDigestsPrefix
// names, in the form tokenKey writes (lowercase hex); false for any other
// key.
func (s *Store) TokenDigestOfKey(key []byte) (token.Hash, bool) {
	var h token.Hash
	prefix := s.TokenDigestsPrefix()
	if len(key) != len(prefix)+2*len(h) || string(key[:len(prefix)]) != prefix {
		return h, false
	}
	digits := key[len(prefix):]
	for _, c := range digits {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return h, false
		}
	}
	hex.Decode(h[:], digits) // cannot fail: checked above
	return h, true
}

// ScanTokenDigests calls fn with the digest of every token the store holds
// at one etcd revision, which it returns. It reads keys only, a page at a
// time, all pages at the revision of the first read, so tokens created or
// deleted during the scan are seen as they were at that revision, not half
// of them. Keys under the prefix that are not digests are skipped.
//
// etcd counts, for every read, the keys from its start to the end of its
// range: pages of one range over a million keys would cost a count of half
// a million keys each, a build of minutes. So the scan first counts the
// keys, then reads them in parts sharing one to three leading hex digits,
// each about a page (digests are spread evenly): counting stays
// proportional to what is read.
//
// A scan that outlives etcd's history (compaction of its revision) fails;
// start again.
func (s *Store) ScanTokenDigests(ctx context.Context, fn func(token.Hash)) (int64, error) {
	prefix := s.TokenDigestsPrefix()
	resp, err := s.scanPage(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	digits := 0
	for n := resp.Count; n > digestPage && digits < 3; n /= 16 {
		digits++
	}
	parts := 1 << (4 * digits)
	for i := range parts {
		from, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
		if digits > 0 {
			from = prefix + fmt.Sprintf("%0*x", digits, i)
			end = clientv3.GetPrefixRangeEnd(from)
		}
		if err := s.scanRange(ctx, from, end, rev, fn); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// scanRange reads the digests in [from, end) at revision rev, a page at a
// time.
func (s *Store) scanRange(ctx context.Context, from, end string, rev int64, fn func(token.Hash)) error {
	for {
		resp, err := s.scanPage(ctx, from, clientv3.WithRange(end), clientv3.WithRev(rev),
			clientv3.WithKeysOnly(), clientv3.WithLimit(digestPage))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if h, ok := s.TokenDigestOfKey(kv.Key); ok {
				fn(h)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		// The next page starts just after the last key read.
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// scanPage reads one page of a scan, within its own timeout when ctx has
// none: a long scan is many short reads.
func (s *Store) scanPage(ctx context.Context, from string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opScan, from, opts...)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return nil, fmt.Errorf("reading token digests: %w", err)
	case err != nil:
		return nil, unavailable(fmt.Errorf("reading token digests: %w", err))
	}
	return resp, nil
}
