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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	prefix := s.auditPrefix(org)
	from := prefix
	if cursor != "" {
		from = prefix + cursor + "\x00"
	}
	events := make([]Event, 0, min(limit, 1000))
	// Filtering happens here, so read on until the page is full or the
	// events run out.
	for len(events) < limit {
		resp, err := s.get(ctx, opRead, from,
			clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
			clientv3.WithLimit(int64(limit-len(events))))
		if err != nil {
			return nil, "", unavailable(err)
		}
		for _, kv := range resp.Kvs {
			var e Event
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return nil, "", fmt.Errorf("decoding %s: %v", kv.Key, err)
			}
			e.Seq = string(kv.Key[len(prefix):])
			if account == "" || e.Account == account {
				events = append(events, e)
			}
		}
		if !resp.More {
			return events, "", nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return events, events[len(events)-1].Seq, nil
}
