package store

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var auditSeqPattern = regexp.MustCompile(`^[0-9]{19}-[0-9a-f]{8}$`)

// ListEvents returns up to limit audit events of an organization, newest
// first, starting after cursor (the Seq of the last event of the previous
// page), and the cursor of the next page, or "" at the end. New events sort
// before every existing one, so paging is not disturbed by ongoing changes.
// A non-empty account keeps only the events of that account.
func (s *Store) ListEvents(ctx context.Context, org, account string, limit int, cursor string) ([]Event, string, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, "", err
	}
	if cursor != "" && !auditSeqPattern.MatchString(cursor) {
		return nil, "", &FieldError{"cursor", "is not a cursor this API returned"}
	}
	return page(ctx, s, s.auditPrefix(org), cursor, limit, func(seq string, e *Event) bool {
		e.Seq = seq
		return account == "" || e.Account == account
	})
}

// page reads up to limit values under prefix in key order, starting after
// the key prefix+cursor, and keeps those keep accepts (keep sees each key
// without the prefix, and may fill the value from it). Filtering happens
// here, so a page of etcd keys may yield fewer values than asked: it reads
// on until the page is full or the keys end. It returns the next cursor —
// the key of the last value kept — or "" at the end.
func page[T any](ctx context.Context, s *Store, prefix, cursor string, limit int, keep func(key string, v *T) bool) ([]T, string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	from := prefix
	if cursor != "" {
		from = prefix + cursor + "\x00"
	}
	out := make([]T, 0, min(limit, 1000))
	last := ""
	for len(out) < limit {
		resp, err := s.get(ctx, opRead, from,
			clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
			clientv3.WithLimit(int64(limit-len(out))))
		if err != nil {
			return nil, "", unavailable(err)
		}
		for _, kv := range resp.Kvs {
			var v T
			if err := json.Unmarshal(kv.Value, &v); err != nil {
				return nil, "", fmt.Errorf("decoding %s: %v", kv.Key, err)
			}
			key := string(kv.Key[len(prefix):])
			if keep(key, &v) {
				out, last = append(out, v), key
			}
		}
		if !resp.More {
			return out, "", nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, last, nil
}
