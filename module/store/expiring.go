package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// scanPage is how many keys one read of a token scan returns.
const scanPage = 1000

// ScanTokens calls fn with every token record of every organization, a
// page of keys at a time (each page a consistent read of its own).
func (s *Store) ScanTokens(ctx context.Context, fn func(t *Token) error) error {
	return scanAll(ctx, s, s.prefix+"/usertokens/", func(key, value []byte) error {
		var t Token
		if err := json.Unmarshal(value, &t); err != nil {
			return fmt.Errorf("decoding %s: %v", key, err)
		}
		return fn(&t)
	})
}

// ExpiryWarnings records which token.expiring warnings a token has had,
// for the expiry it had then: a token whose expiry changed starts afresh.
type ExpiryWarnings struct {
	ExpiresAt time.Time `json:"expires_at"`
	Windows   []string  `json:"windows"`
}

// Has reports whether the warning of window was sent for expiry at.
func (w *ExpiryWarnings) Has(window string, at time.Time) bool {
	return w != nil && w.ExpiresAt.Equal(at) && slices.Contains(w.Windows, window)
}

// AllExpiryWarnings reads every token's warnings, keyed by
// "<org>/<user>/<tok>".
func (s *Store) AllExpiryWarnings(ctx context.Context) (map[string]*ExpiryWarnings, error) {
	prefix := s.prefix + "/expiring/"
	out := map[string]*ExpiryWarnings{}
	err := scanAll(ctx, s, prefix, func(key, value []byte) error {
		var w ExpiryWarnings
		if err := json.Unmarshal(value, &w); err != nil {
			return nil // a damaged marker is a missing one: at worst a warning twice
		}
		out[strings.TrimPrefix(string(key), prefix)] = &w
		return nil
	})
	return out, err
}

// WarnExpiring writes the audit event token.expiring for a token, window
// ("7d", "1d") ahead of its expiry, and records in the same transaction
// that it did, together with the wider windows in also, so that no
// gateway sends it again. It reports whether it wrote the event: not when
// the token is gone, its expiry changed, the warning was already
// recorded, or the user is disabled (the window is then recorded alone). The transaction is guarded by the leadership.
func (s *Store) WarnExpiring(ctx context.Context, lead Leadership, t *Token, window string, also []string) (bool, error) {
	if t.ExpiresAt == nil || !ValidOrgID(t.Org) || !ValidUserID(t.User) || !ValidTokenID(t.ID) {
		return false, nil
	}
	at := *t.ExpiresAt
	wrote := false
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		wrote = false
		if err := r.leads(lead); err != nil {
			return nil, err
		}
		var cur Token
		if found, err := r.getJSON(s.userTokenKey(t.Org, t.User, t.ID), &cur); err != nil || !found {
			return nil, err
		}
		if cur.ExpiresAt == nil || !cur.ExpiresAt.Equal(at) {
			return nil, nil
		}
		var u User
		if found, err := r.getJSON(s.userKey(t.Org, t.User), &u); err != nil || !found {
			return nil, err
		}
		var marks ExpiryWarnings
		if _, err := r.getJSON(s.expiringKey(t.Org, t.User, t.ID), &marks); err != nil {
			return nil, err
		}
		if !marks.ExpiresAt.Equal(at) {
			marks = ExpiryWarnings{ExpiresAt: at}
		}
		if slices.Contains(marks.Windows, window) {
			return nil, nil
		}
		for _, w := range append([]string{window}, also...) {
			if !slices.Contains(marks.Windows, w) {
				marks.Windows = append(marks.Windows, w)
			}
		}
		var w writes
		w.put(s.expiringKey(t.Org, t.User, t.ID), marks)
		if u.Disabled {
			// Nobody can use the token while its user is disabled: the
			// window passes without a warning, and is not warned of later.
			return w.ops, w.err
		}
		wrote = true
		return s.withEvent(&w, Event{Org: t.Org, Actor: System, Action: ActionTokenExpiring, Target: t.ID,
			Account: u.Account, User: t.User, Window: window, ExpiresAt: &at})
	})
	if err != nil {
		return false, err
	}
	return wrote, nil
}

// leads checks, and guards, that the leadership still holds.
func (r *snapshot) leads(lead Leadership) error {
	kv, err := r.get(lead.Key)
	if err != nil {
		return err
	}
	if kv == nil || kv.CreateRevision != lead.Rev {
		return callerError{ErrNotLeader}
	}
	return nil
}

// scanAll calls fn with every key under prefix, a page at a time.
func scanAll(ctx context.Context, s *Store, prefix string, fn func(key, value []byte) error) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		rctx, cancel := withTimeout(ctx)
		resp, err := s.get(rctx, opRead, from, clientv3.WithRange(end), clientv3.WithLimit(scanPage))
		cancel()
		if err != nil {
			return unavailable(err)
		}
		for _, kv := range resp.Kvs {
			if err := fn(kv.Key, kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
