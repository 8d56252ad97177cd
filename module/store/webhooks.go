package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits on webhooks.
const (
	MaxWebhooksPerOrg   = 50
	MaxWebhookURLLen    = 2048
	MaxWebhookEvents    = 50
	MaxDeliveriesKept   = 100 // per webhook, newest first
	webhookSecretPrefix = "whsec_"
)

// ParseWebhookURL checks the shape of a webhook's URL: absolute, http or
// https, a host, no credentials (the signature authenticates deliveries,
// and the URL is shown in listings), no fragment. Where it may lead is
// the webhook package's to judge (CheckURL).
func ParseWebhookURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, &FieldError{"url", "is required"}
	}
	if len(raw) > MaxWebhookURLLen || !utf8.ValidString(raw) || strings.ContainsFunc(raw, isControl) {
		return nil, &FieldError{"url", fmt.Sprintf("must be a URL of at most %d characters", MaxWebhookURLLen)}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, &FieldError{"url", "is not a valid URL"}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &FieldError{"url", "must be an http or https URL"}
	case u.Host == "" || u.Hostname() == "":
		return nil, &FieldError{"url", "must name a host"}
	case u.User != nil:
		return nil, &FieldError{"url", "must not carry credentials (deliveries are signed instead)"}
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, &FieldError{"url", "must not have a fragment"}
	case !validPort(u.Port()):
		return nil, &FieldError{"url", "has a port outside 1–65535"}
	}
	return u, nil
}

// validPort accepts no port, or 1 to 65535 written without leading zeros.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// ValidateWebhook checks the rules every stored webhook obeys.
func ValidateWebhook(w *Webhook) error {
	if _, err := ParseWebhookURL(w.URL); err != nil {
		return err
	}
	if err := checkWebhookEvents(w.Events); err != nil {
		return err
	}
	if err := checkDescription(w.Description); err != nil {
		return err
	}
	if !strings.HasPrefix(w.Secret, webhookSecretPrefix) {
		return fmt.Errorf("store: webhook %s has no whsec_ secret", w.ID)
	}
	return nil
}

func checkWebhookEvents(events []string) error {
	switch {
	case len(events) == 0:
		return &FieldError{"events", `must name at least one action, or be ["*"] for every one`}
	case len(events) > MaxWebhookEvents:
		return &FieldError{"events", fmt.Sprintf("must hold at most %d actions", MaxWebhookEvents)}
	}
	seen := map[string]bool{}
	for _, e := range events {
		switch {
		case e == "*" && len(events) > 1:
			return &FieldError{"events", `"*" means every action and stands alone`}
		case e != "*" && !slices.Contains(Actions, e):
			return &FieldError{"events", fmt.Sprintf("%q is not an audit action (known: %s)", e, strings.Join(Actions, ", "))}
		case seen[e]:
			return &FieldError{"events", fmt.Sprintf("names %q more than once", e)}
		}
		seen[e] = true
	}
	return nil
}

// CreateWebhook stores a new webhook with a generated ID; w.Secret must be
// set (the caller shows it once). The audit event webhook.create commits
// with it, and is the first event the webhook is sent if it subscribes to
// it.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook, by Actor) (*Webhook, error) {
	w.ID = NewWebhookID()
	if err := ValidateWebhook(&w); err != nil {
		return nil, err
	}
	w.CreatedAt, w.CreatedBy = s.Now().UTC(), by
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if err := r.mustExist(s.orgKey(w.Org), "organization "+w.Org); err != nil {
			return nil, err
		}
		existing, err := r.list(s.webhooksPrefix(w.Org))
		if err != nil {
			return nil, err
		}
		if len(existing) >= MaxWebhooksPerOrg {
			return nil, &ConflictError{fmt.Sprintf("organization %s already has %d webhooks; delete one first", w.Org, len(existing))}
		}
		if kv, err := r.get(s.webhookKey(w.Org, w.ID)); err != nil {
			return nil, err
		} else if kv != nil {
			return nil, &ConflictError{"webhook " + w.ID + " already exists"}
		}
		var wr writes
		wr.put(s.webhookKey(w.Org, w.ID), w)
		return s.withEvent(&wr, Event{Org: w.Org, Actor: by, Action: ActionWebhookCreate, Target: w.ID})
	})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// GetWebhook returns a webhook, secret included: callers showing it must
// leave the secret out.
func (s *Store) GetWebhook(ctx context.Context, org, id string) (*Webhook, error) {
	var w Webhook
	if !ValidOrgID(org) || !ValidWebhookID(id) {
		return nil, &NotFoundError{"webhook " + id}
	}
	if err := s.getJSON(ctx, s.webhookKey(org, id), &w, "webhook "+id); err != nil {
		return nil, err
	}
	return &w, nil
}

// ListWebhooks returns an organization's webhooks, ordered by ID.
func (s *Store) ListWebhooks(ctx context.Context, org string) ([]Webhook, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, err
	}
	return listAll[Webhook](ctx, s, s.webhooksPrefix(org))
}

// WebhookChange is a partial update of a webhook: nil fields stay.
type WebhookChange struct {
	URL         *string
	Events      []string // nil: unchanged
	Description *string
	Disabled    *bool
}

// UpdateWebhook applies a change to a webhook.
func (s *Store) UpdateWebhook(ctx context.Context, org, id string, c WebhookChange, by Actor) (*Webhook, error) {
	return s.changeWebhook(ctx, org, id, by, func(w *Webhook, _ time.Time) error {
		if c.URL != nil {
			w.URL = *c.URL
		}
		if c.Events != nil {
			w.Events = slices.Clone(c.Events)
		}
		if c.Description != nil {
			w.Description = *c.Description
		}
		if c.Disabled != nil {
			w.Disabled = *c.Disabled
		}
		return ValidateWebhook(w)
	})
}

// RotateWebhookSecret gives a webhook a new signing secret. With an
// overlap the old one signs beside it until then (a rotation during an
// overlap ends the older one at once); without, it stops at once.
func (s *Store) RotateWebhookSecret(ctx context.Context, org, id, secret string, overlap time.Duration, by Actor) (*Webhook, error) {
	return s.changeWebhook(ctx, org, id, by, func(w *Webhook, now time.Time) error {
		w.PreviousSecret, w.PreviousSecretExpiresAt = "", nil
		if overlap > 0 {
			until := now.Add(overlap)
			w.PreviousSecret, w.PreviousSecretExpiresAt = w.Secret, &until
		}
		w.Secret = secret
		return nil
	})
}

// changeWebhook applies change to a webhook as stored, in a transaction
// that writes it back with a webhook.update audit event.
func (s *Store) changeWebhook(ctx context.Context, org, id string, by Actor, change func(w *Webhook, now time.Time) error) (*Webhook, error) {
	if !ValidOrgID(org) || !ValidWebhookID(id) {
		return nil, &NotFoundError{"webhook " + id}
	}
	var out Webhook
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var w Webhook
		if found, err := r.getJSON(s.webhookKey(org, id), &w); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"webhook " + id}
		}
		now := s.Now().UTC()
		if err := change(&w, now); err != nil {
			return nil, err
		}
		w.UpdatedAt = now
		out = w
		var wr writes
		wr.put(s.webhookKey(org, id), w)
		return s.withEvent(&wr, Event{Org: org, Actor: by, Action: ActionWebhookUpdate, Target: id})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook deletes a webhook, its cursor and its deliveries log in
// one transaction: deliveries stop at once.
func (s *Store) DeleteWebhook(ctx context.Context, org, id string, by Actor) error {
	if !ValidOrgID(org) || !ValidWebhookID(id) {
		return &NotFoundError{"webhook " + id}
	}
	return s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if err := r.mustExist(s.webhookKey(org, id), "webhook "+id); err != nil {
			return nil, err
		}
		var w writes
		w.del(s.webhookKey(org, id))
		w.del(s.webhookCursorKey(org, id))
		w.del(s.deliveriesPrefix(org, id), clientv3.WithPrefix())
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionWebhookDelete, Target: id})
	})
}

// ListDeliveries returns up to limit delivery attempts of a webhook,
// newest first, after cursor, and the next cursor ("" at the end).
func (s *Store) ListDeliveries(ctx context.Context, org, id string, limit int, cursor string) ([]Delivery, string, error) {
	if _, err := s.GetWebhook(ctx, org, id); err != nil {
		return nil, "", err
	}
	if cursor != "" && !auditSeqPattern.MatchString(cursor) {
		return nil, "", &FieldError{"cursor", "is not a cursor this API returned"}
	}
	return page(ctx, s, s.deliveriesPrefix(org, id), cursor, limit, func(seq string, d *Delivery) bool {
		d.Seq = seq
		return true
	})
}

// DecodeWebhook decodes a webhook as read from etcd, with its revision.
func DecodeWebhook(key, value []byte, createRevision int64) (*Webhook, error) {
	var w Webhook
	if err := json.Unmarshal(value, &w); err != nil {
		return nil, fmt.Errorf("decoding %s: %v", key, err)
	}
	if !ValidOrgID(w.Org) || !ValidWebhookID(w.ID) || !strings.HasSuffix(string(key), "/"+w.Org+"/"+w.ID) {
		return nil, fmt.Errorf("webhook at %s is damaged", key)
	}
	w.CreateRevision = createRevision
	return &w, nil
}

// AllWebhooks reads every organization's webhooks and the revision they
// were read at, from which a watch of WebhooksPrefix goes on.
func (s *Store) AllWebhooks(ctx context.Context) ([]Webhook, int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, s.WebhooksPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, unavailable(err)
	}
	out := make([]Webhook, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		w, err := DecodeWebhook(kv.Key, kv.Value, kv.CreateRevision)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *w)
	}
	return out, resp.Header.Revision, nil
}

// webhookCursor is the value under a webhook's cursor key.
type webhookCursor struct {
	// Revision is the audit revision up to which every event of the
	// organization has been delivered to the webhook (or given up, or
	// skipped as not subscribed to).
	Revision int64 `json:"revision"`
}

// WebhookCursor returns the audit revision a webhook's deliveries reached:
// every event at or before it is done with. A webhook without a stored
// cursor starts just before its creation, so that the events of its own
// creation's revision are its first.
func (s *Store) WebhookCursor(ctx context.Context, w *Webhook) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, s.webhookCursorKey(w.Org, w.ID))
	if err != nil {
		return 0, unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return w.CreateRevision - 1, nil
	}
	var c webhookCursor
	if err := json.Unmarshal(resp.Kvs[0].Value, &c); err != nil {
		return 0, fmt.Errorf("decoding the cursor of webhook %s: %v", w.ID, err)
	}
	return c.Revision, nil
}

// Leadership is an etcd election key its holder created at Rev. Writes
// guarded by it commit only while the holder still leads.
type Leadership struct {
	Key string
	Rev int64
}

func (l Leadership) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.Key), "=", l.Rev)
}

// Errors of the delivery engine's writes.
var (
	// ErrNotLeader: the write was refused because the writer no longer
	// holds its leadership.
	ErrNotLeader = errors.New("no longer the webhook leader")
	// ErrWebhookGone: the webhook was deleted (or deleted and made
	// again) since the writer read it.
	ErrWebhookGone = errors.New("the webhook is gone")
)

// RecordDelivery writes what became of one delivery attempt — d, if not
// nil, into the webhook's deliveries log, trimmed to its newest
// MaxDeliveriesKept entries — and moves the webhook's cursor to cursor
// when it is above zero, in one transaction guarded by the leadership and
// by the webhook still being the one read.
func (s *Store) RecordDelivery(ctx context.Context, lead Leadership, w *Webhook, d *Delivery, cursor int64) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ops []clientv3.Op
	if d != nil {
		prefix := s.deliveriesPrefix(w.Org, w.ID)
		resp, err := s.get(ctx, opRead, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(MaxDeliveriesKept))
		if err != nil {
			return unavailable(err)
		}
		if len(resp.Kvs) == MaxDeliveriesKept {
			// The new entry sorts first; the oldest kept ones go.
			oldest := string(resp.Kvs[MaxDeliveriesKept-1].Key)
			ops = append(ops, clientv3.OpDelete(oldest, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))))
		}
		op, err := putJSON(prefix+auditSeq(d.Time.UnixNano()), d)
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	if cursor > 0 {
		op, err := putJSON(s.webhookCursorKey(w.Org, w.ID), webhookCursor{Revision: cursor})
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return nil
	}
	whKey := s.webhookKey(w.Org, w.ID)
	resp, err := s.commit(opTxn, s.client.Txn(ctx).
		If(lead.cmp(), clientv3.Compare(clientv3.CreateRevision(whKey), "=", w.CreateRevision)).
		Then(ops...).
		Else(clientv3.OpTxn([]clientv3.Cmp{lead.cmp()}, nil, nil)))
	if err != nil {
		return storeError(err)
	}
	if resp.Succeeded {
		s.noteCommit(resp.Header.Revision)
		return nil
	}
	if inner := resp.Responses[0].GetResponseTxn(); inner != nil && !inner.Succeeded {
		return ErrNotLeader
	}
	return ErrWebhookGone
}

// DecodeEvent decodes an audit event as read from etcd under
// AuditPrefix: its Seq is the key's last segment, its Revision the key's.
func (s *Store) DecodeEvent(key, value []byte, revision int64) (*Event, error) {
	var e Event
	if err := json.Unmarshal(value, &e); err != nil {
		return nil, fmt.Errorf("decoding %s: %v", key, err)
	}
	k := string(key)
	e.Seq = k[strings.LastIndexByte(k, '/')+1:]
	e.Revision = revision
	return &e, nil
}

// EventsAfter reads up to limit audit events of an organization written
// after revision after, in audit order, as the cluster has them at
// revision at (0: now). It returns the revision read at (pass it back to
// read on consistently) and whether more events follow. It is how
// deliveries catch up when etcd has compacted the history a watch would
// replay.
func (s *Store) EventsAfter(ctx context.Context, org string, after, at int64, limit int) ([]Event, int64, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	prefix := s.auditPrefix(org)
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(after + 1),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend), clientv3.WithLimit(int64(limit))}
	if at > 0 {
		opts = append(opts, clientv3.WithRev(at))
	}
	resp, err := s.get(ctx, opRead, prefix, opts...)
	if err != nil {
		return nil, 0, false, unavailable(err)
	}
	out := make([]Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := s.DecodeEvent(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, false, err
		}
		out = append(out, *e)
	}
	rev := at
	if rev == 0 {
		rev = resp.Header.Revision
	}
	return out, rev, resp.More, nil
}
