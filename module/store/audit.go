package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var auditSeqPattern = regexp.MustCompile(`^[0-9]{19}-[0-9a-f]{8}$`)

// ListEvents returns up to limit audit events of an organization, newest
// first, starting after cursor (the Seq of the last event of the previous
// page), and the cursor of the next page, or "" at the end. New events sort
// before every existing one, so paging is not disturbed by ongoing changes.
// A non-empty account keeps only the events of that account.
func (s *Store) ListEvents(ctx context.Context, org, account string, limit int, cursor string) ([]Event, string, error) {
	return s.ListEventsWhere(ctx, org, EventFilter{Account: account}, limit, cursor)
}

// EventFilter narrows a listing of audit events; empty fields match every
// event.
type EventFilter struct {
	Account string // the events of this account
	Actor   string // made by this actor (its ID)
	Action  string // of this action
	// Since and Until bound the events' times, both included. The events
	// are keyed by time, so only the keys between them are read.
	Since, Until time.Time
}

// ListEventsWhere is ListEvents keeping the events f matches.
func (s *Store) ListEventsWhere(ctx context.Context, org string, f EventFilter, limit int, cursor string) ([]Event, string, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, "", err
	}
	if cursor != "" && !auditSeqPattern.MatchString(cursor) {
		return nil, "", &FieldError{"cursor", "is not a cursor this API returned"}
	}
	// Newest first: the key of a later time sorts before an earlier one's.
	var from, to string
	if !f.Until.IsZero() {
		from = fmt.Sprintf("%019d", math.MaxInt64-f.Until.UnixNano())
	}
	if !f.Since.IsZero() {
		to = fmt.Sprintf("%019d", math.MaxInt64-f.Since.UnixNano()+1)
	}
	return pageIn(ctx, s, s.auditPrefix(org), from, to, cursor, limit, func(seq string, e *Event) bool {
		e.Seq = seq
		return (f.Account == "" || e.Account == f.Account) && (f.Actor == "" || e.Actor.ID == f.Actor) &&
			(f.Action == "" || e.Action == f.Action)
	})
}

// page reads up to limit values under prefix in key order, starting after
// the key prefix+cursor, and keeps those keep accepts (keep sees each key
// without the prefix, and may fill the value from it). Filtering happens
// here, so a page of etcd keys may yield fewer values than asked: it reads
// on until the page is full or the keys end. It returns the next cursor —
// the key of the last value kept — or "" at the end.
func page[T any](ctx context.Context, s *Store, prefix, cursor string, limit int, keep func(key string, v *T) bool) ([]T, string, error) {
	return pageIn(ctx, s, prefix, "", "", cursor, limit, keep)
}

// pageIn is page over the keys under prefix from prefix+lo (included) to
// prefix+hi (excluded); "" leaves that end open.
func pageIn[T any](ctx context.Context, s *Store, prefix, lo, hi, cursor string, limit int, keep func(key string, v *T) bool) ([]T, string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	from := prefix + lo
	if cursor != "" && cursor+"\x00" > lo {
		from = prefix + cursor + "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	if hi != "" {
		end = prefix + hi
	}
	if from >= end {
		return []T{}, "", nil
	}
	out := make([]T, 0, min(limit, 1000))
	last := ""
	for len(out) < limit {
		resp, err := s.get(ctx, opRead, from,
			clientv3.WithRange(end),
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
