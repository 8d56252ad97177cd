package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A user that made no request for its organization's dormant_after is
// reported once, by the audit event user.dormant (which webhooks deliver);
// /dormant/<org>/<user> records the last activity it was reported for, so
// it is reported again only after it is used and falls idle once more.

func (s *Store) dormantPrefix() string              { return s.prefix + "/dormant/" }
func (s *Store) dormantKey(org, user string) string { return s.dormantPrefix() + org + "/" + user }

// dormancyMark is what /dormant/<org>/<user> holds.
type dormancyMark struct {
	Since time.Time `json:"since"`
}

// LastActivity reads when each user last used one of its tokens, keyed
// "<org>/<user>"; users that never did are absent.
func (s *Store) LastActivity(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, root := range []string{s.lastUsedRoot(), s.legacyLastUsedPrefix()} {
		err := scanAll(ctx, s, root, func(key, value []byte) error {
			parts := strings.Split(strings.TrimPrefix(string(key), root), "/")
			t, ok := parseLastUsed(value)
			if len(parts) != 3 || !ok {
				return nil // a damaged time is a missing one
			}
			if k := parts[0] + "/" + parts[1]; t.After(out[k]) {
				out[k] = t
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DormancyReported reads which users were reported dormant, and for which
// last activity, keyed "<org>/<user>".
func (s *Store) DormancyReported(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := scanAll(ctx, s, s.dormantPrefix(), func(key, value []byte) error {
		var m dormancyMark
		if json.Unmarshal(value, &m) == nil {
			out[strings.TrimPrefix(string(key), s.dormantPrefix())] = m.Since
		}
		return nil
	})
	return out, err
}

// ScanUsers calls fn with every user of every organization, a page at a
// time.
func (s *Store) ScanUsers(ctx context.Context, fn func(u *User) error) error {
	return scanAll(ctx, s, s.prefix+"/users/", func(key, value []byte) error {
		var u User
		if err := json.Unmarshal(value, &u); err != nil {
			return fmt.Errorf("decoding %s: %v", key, err)
		}
		return fn(&u)
	})
}

// ReportDormant writes user.dormant for a user whose last activity was
// since, if, read again in the transaction, the user exists, is enabled,
// was last active at since, has been idle for its organization's
// dormant_after at now, and was not reported for since yet. It reports
// whether it wrote the event. The transaction is guarded by the
// leadership.
func (s *Store) ReportDormant(ctx context.Context, lead Leadership, org, user string, since, now time.Time) (bool, error) {
	if !ValidOrgID(org) || !ValidUserID(user) {
		return false, nil
	}
	wrote := false
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		wrote = false
		if err := r.leads(lead); err != nil {
			return nil, err
		}
		var o Org
		var u User
		if found, err := r.getJSON(s.orgKey(org), &o); err != nil || !found {
			return nil, err
		}
		if found, err := r.getJSON(s.userKey(org, user), &u); err != nil || !found || u.Disabled {
			return nil, err
		}
		last := u.CreatedAt
		for _, prefix := range []string{s.lastUsedPrefix(org, user), s.legacyLastUsedUserPrefix(org, user)} {
			kvs, err := r.list(prefix)
			if err != nil {
				return nil, err
			}
			for _, kv := range kvs {
				if t, ok := parseLastUsed(kv.Value); ok && t.After(last) {
					last = t
				}
			}
		}
		if !last.Equal(since) || now.Sub(last) < o.Dormancy() {
			return nil, nil
		}
		var mark dormancyMark
		if _, err := r.getJSON(s.dormantKey(org, user), &mark); err != nil {
			return nil, err
		}
		if mark.Since.Equal(since) {
			return nil, nil
		}
		window := o.DormantAfter
		if window == "" {
			window = fmt.Sprintf("%dd", int(DefaultDormantAfter/(24*time.Hour)))
		}
		var w writes
		w.put(s.dormantKey(org, user), dormancyMark{Since: since})
		wrote = true
		at := since.UTC()
		return s.withEvent(&w, Event{Org: org, Actor: System, Action: ActionUserDormant, Target: user,
			Account: u.Account, User: user, Window: window, LastActiveAt: &at})
	})
	if err != nil {
		return false, err
	}
	return wrote, nil
}
