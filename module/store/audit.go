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
func (s *Store) ListEvents(ctx context.Context, org string, limit int, cursor string) ([]Event, string, error) {
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
	s.rangeRPCs.Add(1)
	resp, err := s.client.Get(ctx, from,
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, "", unavailable(err)
	}
	events := make([]Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e Event
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, "", fmt.Errorf("decoding %s: %v", kv.Key, err)
		}
		e.Seq = string(kv.Key[len(prefix):])
		events = append(events, e)
	}
	next := ""
	if resp.More && len(events) > 0 {
		next = events[len(events)-1].Seq
	}
	return events, next, nil
}
