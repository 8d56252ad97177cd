package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreateOrg creates an organization; an empty ID gets a generated one.
func (s *Store) CreateOrg(ctx context.Context, o Org, by Actor) (*Org, error) {
	if o.ID == "" {
		o.ID = NewOrgID()
	} else if !ValidOrgID(o.ID) {
		return nil, &FieldError{"id", "must be lowercase letters, digits and dashes, at most 63 characters"}
	}
	if err := checkName("name", o.Name, true); err != nil {
		return nil, err
	}
	o.CreatedAt, o.CreatedBy = s.Now().UTC(), by
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if kv, err := r.get(s.orgKey(o.ID)); err != nil {
			return nil, err
		} else if kv != nil {
			return nil, &ConflictError{fmt.Sprintf("organization %s already exists", o.ID)}
		}
		var w writes
		w.put(s.orgKey(o.ID), o)
		return s.withEvent(&w, Event{Org: o.ID, Actor: by, Action: ActionOrgCreate, Target: o.ID})
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// GetOrg returns an organization.
func (s *Store) GetOrg(ctx context.Context, id string) (*Org, error) {
	var o Org
	if !ValidOrgID(id) {
		return nil, &NotFoundError{"organization " + id}
	}
	if err := s.getJSON(ctx, s.orgKey(id), &o, "organization "+id); err != nil {
		return nil, err
	}
	return &o, nil
}

// ListOrgs returns every organization, ordered by ID. Organization IDs
// hold no "/", so nothing else lives under the prefix.
func (s *Store) ListOrgs(ctx context.Context) ([]Org, error) {
	return listAll[Org](ctx, s, s.orgKey(""))
}

// CreateAccount creates an account in an existing organization; an empty
// ID gets a generated one. Account ids are unique across organizations
// (see accountids.go): an id another organization holds, or held, is a
// conflict, and a generated id that is taken is drawn again.
func (s *Store) CreateAccount(ctx context.Context, a Account, by Actor) (*Account, error) {
	generated := a.ID == ""
	if generated {
		a.ID = NewAccountID()
	} else if !ValidAccountID(a.ID) {
		return nil, &FieldError{"id", "must look like act-1a2b3c4d"}
	}
	if err := checkName("name", a.Name, true); err != nil {
		return nil, err
	}
	if err := s.indexAccountIDs(ctx); err != nil {
		return nil, err
	}
	a.CreatedAt, a.CreatedBy = s.Now().UTC(), by
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if err := r.mustExist(s.orgKey(a.Org), "organization "+a.Org); err != nil {
			return nil, err
		}
		var w writes
		for draws := 1; ; draws++ {
			err := r.claimAccountID(&w, a.Org, a.ID)
			if err == nil {
				break
			}
			if !generated || !errors.Is(err, ErrConflict) || draws == maxIDDraws {
				return nil, err
			}
			a.ID = NewAccountID()
		}
		w.put(s.accountKey(a.Org, a.ID), a)
		return s.withEvent(&w, Event{Org: a.Org, Actor: by, Action: ActionAccountCreate, Target: a.ID, Account: a.ID})
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// GetAccount returns an account.
func (s *Store) GetAccount(ctx context.Context, org, id string) (*Account, error) {
	var a Account
	if !ValidOrgID(org) || !ValidAccountID(id) {
		return nil, &NotFoundError{"account " + id}
	}
	if err := s.getJSON(ctx, s.accountKey(org, id), &a, "account "+id); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListAccounts returns an organization's accounts, ordered by ID.
func (s *Store) ListAccounts(ctx context.Context, org string) ([]Account, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, err
	}
	return listAll[Account](ctx, s, s.accountsPrefix(org))
}

func summarize(items []string) string {
	if len(items) > 5 {
		return strings.Join(items[:5], ", ") + fmt.Sprintf(" and %d more", len(items)-5)
	}
	return strings.Join(items, ", ")
}

// mustExist reads a key and fails with NotFound when it is absent.
func (r *snapshot) mustExist(key, what string) error {
	kv, err := r.get(key)
	if err != nil {
		return err
	}
	if kv == nil {
		return &NotFoundError{what}
	}
	return nil
}

// writes collects the operations of one transaction; the first encoding
// error sticks and is reported when the writes are assembled.
type writes struct {
	ops []clientv3.Op
	err error
}

func (w *writes) put(key string, v any) {
	if w.err != nil {
		return
	}
	op, err := putJSON(key, v)
	w.ops, w.err = append(w.ops, op), err
}

func (w *writes) del(key string, opts ...clientv3.OpOption) {
	w.ops = append(w.ops, clientv3.OpDelete(key, opts...))
}

// withEvent assembles the writes and appends the audit event recording
// them, so that a change and its record commit together or not at all.
func (s *Store) withEvent(w *writes, e Event) ([]clientv3.Op, error) {
	if w.err != nil {
		return nil, w.err
	}
	e.Time = s.Now().UTC()
	op, err := putJSON(s.auditPrefix(e.Org)+auditSeq(e.Time.UnixNano()), e)
	if err != nil {
		return nil, err
	}
	return append(w.ops, op), nil
}

// getJSON reads one key into v outside any transaction.
func (s *Store) getJSON(ctx context.Context, key string, v any, what string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, key)
	if err != nil {
		return unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return &NotFoundError{what}
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return fmt.Errorf("decoding %s: %v", key, err)
	}
	return nil
}

// listAll reads and decodes every value under prefix, in key order.
func listAll[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, unavailable(err)
	}
	return decodeAll[T](resp.Kvs)
}

// OrgChange is what an update of an organization sets: nil leaves a field
// as it is, "" clears a setting.
type OrgChange struct {
	Name, MaxTokenLifetime, DormantAfter *string
}

// UpdateOrg changes an organization's name and settings, audited as
// org.update.
func (s *Store) UpdateOrg(ctx context.Context, id string, ch OrgChange, by Actor) (*Org, error) {
	if !ValidOrgID(id) {
		return nil, &NotFoundError{"organization " + id}
	}
	if ch.Name != nil {
		if err := checkName("name", *ch.Name, true); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"max_token_lifetime", ch.MaxTokenLifetime}, {"dormant_after", ch.DormantAfter}} {
		if f.v == nil {
			continue
		}
		if _, err := ParseDays(*f.v); err != nil {
			return nil, &FieldError{f.name, err.Error()}
		}
	}
	var o Org
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		o = Org{}
		if found, err := r.getJSON(s.orgKey(id), &o); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"organization " + id}
		}
		for _, f := range []struct{ to, v *string }{{&o.Name, ch.Name}, {&o.MaxTokenLifetime, ch.MaxTokenLifetime}, {&o.DormantAfter, ch.DormantAfter}} {
			if f.v != nil {
				*f.to = *f.v
			}
		}
		var w writes
		w.put(s.orgKey(id), o)
		return s.withEvent(&w, Event{Org: id, Actor: by, Action: ActionOrgUpdate, Target: id})
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// MaxTokensBeyond bounds the tokens TokensBeyond returns.
const MaxTokensBeyond = 1000

// TokensBeyond returns the live tokens of an organization that would
// outlive its MaxTokenLifetime from now (no expiry, or a later one), at
// most MaxTokensBeyond, and whether there were more.
func (s *Store) TokensBeyond(ctx context.Context, o *Org) ([]Token, bool, error) {
	max, err := ParseDays(o.MaxTokenLifetime)
	if err != nil || max == 0 {
		return nil, false, err
	}
	now := s.Now()
	limit := now.Add(max)
	var out []Token
	more := false
	err = scanAll(ctx, s, s.prefix+"/usertokens/"+o.ID+"/", func(key, value []byte) error {
		var t Token
		if json.Unmarshal(value, &t) != nil || t.Expired(now) || t.ExpiresAt != nil && !t.ExpiresAt.After(limit) {
			return nil
		}
		if len(out) == MaxTokensBeyond {
			more = true
			return errStopScan
		}
		out = append(out, t)
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, more, err
}

// errStopScan ends a scan early.
var errStopScan = errors.New("scan stopped")
