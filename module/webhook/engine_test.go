package webhook

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
)

var operator = store.Actor{ID: "operator", Type: store.ActorOperator}

// env is a real etcd with an organization in it, and the engines a test
// starts on it, each with a client of its own.
type env struct {
	t     *testing.T
	etcd  *etcdtest.Server
	store *store.Store
	org   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := etcdtest.Start(t)
	e := &env{t: t, etcd: srv, store: store.New(srv.Client(), "/tg"), org: "acme"}
	if _, err := e.store.CreateOrg(e.ctx(), store.Org{ID: e.org, Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// fast is an engine configuration for tests: quick retries and failover.
func fast() Config {
	return Config{AllowPrivate: true, FirstRetry: 20 * time.Millisecond, MaxRetryInterval: 200 * time.Millisecond,
		LeaderTTL: 2 * time.Second, ScanInterval: 50 * time.Millisecond}
}

// engine starts an engine on a client of its own; it closes when the test
// ends. The client is returned so that a test can cut it, as a crash does.
func (e *env) engine(cfg Config) (*Engine, *clientv3.Client) {
	e.t.Helper()
	c := e.etcd.Client()
	eng, err := New(store.New(c, "/tg"), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	eng.Start()
	e.t.Cleanup(eng.Close)
	return eng, c
}

// hook creates a webhook through the store and hands its secret to rcv.
func (e *env) hook(rcv *webhooktest.Receiver, events ...string) *store.Webhook {
	e.t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	secret := NewSecret()
	rcv.SetSecret(secret)
	h, err := e.store.CreateWebhook(e.ctx(), store.Webhook{Org: e.org, URL: rcv.URL, Events: events, Secret: secret}, operator)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// accounts creates n accounts, one audit event account.create each, and
// returns their IDs in audit order.
func (e *env) accounts(n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		a, err := e.store.CreateAccount(e.ctx(), store.Account{Org: e.org, Name: fmt.Sprint("a", i)}, operator)
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// deliveries reads a webhook's deliveries log, newest first.
func (e *env) deliveries(h *store.Webhook) []store.Delivery {
	e.t.Helper()
	ds, _, err := e.store.ListDeliveries(e.ctx(), h.Org, h.ID, 1000, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// TestDeliveredInOrder: every event arrives, signed, in audit order, with
// the audit event as the API shows it; the webhook's own creation first.
func TestDeliveredInOrder(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	e.engine(fast())
	h := e.hook(rcv)
	ids := e.accounts(20)
	webhooktest.WaitFor(t, "21 events arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) >= 21 })
	got, dups := webhooktest.FirstOf(rcv.Arrivals())
	if dups != 0 {
		t.Errorf("%d duplicates without a fault", dups)
	}
	if got[0].Payload.Type != store.ActionWebhookCreate || got[0].Payload.Data.Target != h.ID {
		t.Errorf("first delivery %+v, want the webhook's own creation", got[0].Payload)
	}
	if tg := webhooktest.Targets(got, store.ActionAccountCreate); !slices.Equal(tg, ids) {
		t.Fatalf("accounts arrived in the order %v, want %v", tg, ids)
	}
	events, _, err := e.store.ListEvents(e.ctx(), e.org, "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[string]store.Event{}
	for _, ev := range events {
		bySeq[ev.Seq] = ev
	}
	for _, a := range got {
		ev, ok := bySeq[a.ID]
		if !ok || a.Payload.Data.ID != a.ID || ev.Action != a.Payload.Type || !ev.Time.Equal(a.Payload.Timestamp) ||
			ev.Actor.Type != a.Payload.Data.Actor.Type || ev.Target != a.Payload.Data.Target {
			t.Fatalf("delivery %s does not match its audit event %+v: %+v", a.ID, ev, a.Payload)
		}
	}
	// The delivery is logged just after the receiver answers.
	webhooktest.WaitFor(t, "every delivery logged", 10*time.Second, func() bool { return len(e.deliveries(h)) >= 21 })
	ds := e.deliveries(h)
	if len(ds) != 21 || ds[0].EventID != got[20].ID || ds[0].Status != store.DeliveryDelivered || ds[0].Attempt != 1 || ds[0].HTTPStatus != 204 {
		t.Fatalf("deliveries log: %d entries, newest %+v", len(ds), ds[0])
	}
}

// TestSubscriptionAndDisabled: a webhook gets the actions it subscribes
// to; disabled, nothing; a deleted webhook stops.
func TestSubscriptionAndDisabled(t *testing.T) {
	e := newEnv(t)
	all, some := webhooktest.Start(t), webhooktest.Start(t)
	e.engine(fast())
	e.hook(all)
	h := e.hook(some, store.ActionAccountDelete)
	ids := e.accounts(2)
	if err := e.store.DeleteAccount(e.ctx(), e.org, ids[0], operator); err != nil {
		t.Fatal(err)
	}
	webhooktest.WaitFor(t, "the delete arrived at both", 10*time.Second, func() bool {
		return len(webhooktest.Targets(all.Arrivals(), store.ActionAccountDelete)) == 1 && len(some.Arrivals()) == 1
	})
	if got := some.Arrivals(); got[0].Payload.Type != store.ActionAccountDelete || got[0].Payload.Data.Target != ids[0] {
		t.Fatalf("a webhook for account.delete got %+v", got[0].Payload)
	}
	disabled := true
	if _, err := e.store.UpdateWebhook(e.ctx(), e.org, h.ID, store.WebhookChange{Disabled: &disabled}, operator); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteAccount(e.ctx(), e.org, ids[1], operator); err != nil {
		t.Fatal(err)
	}
	webhooktest.WaitFor(t, "the second delete arrived at the other", 10*time.Second, func() bool {
		return len(webhooktest.Targets(all.Arrivals(), store.ActionAccountDelete)) == 2
	})
	if n := len(some.Arrivals()); n != 1 {
		t.Fatalf("a disabled webhook got %d events", n)
	}
	if err := e.store.DeleteWebhook(e.ctx(), e.org, h.ID, operator); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.ListDeliveries(e.ctx(), e.org, h.ID, 10, ""); err == nil {
		t.Fatal("a deleted webhook's deliveries are still listed")
	}
}

// TestRetriedUntilDelivered: a receiver answering 500 gets the event
// again, the first retry within seconds (default schedule), and the
// deliveries log shows each attempt; later events wait their turn.
func TestRetriedUntilDelivered(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	var failedAt []time.Time
	rcv.Answer(func(n int, a webhooktest.Arrival) int {
		if a.Payload.Type == store.ActionAccountCreate && len(failedAt) < 3 {
			failedAt = append(failedAt, time.Now())
			return 500
		}
		return 200
	})
	cfg := fast()
	cfg.FirstRetry, cfg.MaxRetryInterval = 0, 0 // the defaults: 1s, doubling
	e.engine(cfg)
	h := e.hook(rcv, store.ActionAccountCreate)
	ids := e.accounts(2)
	webhooktest.WaitFor(t, "both accounts arrived", 20*time.Second, func() bool { return len(rcv.Arrivals()) == 2 })
	if got := webhooktest.Targets(rcv.Arrivals(), store.ActionAccountCreate); !slices.Equal(got, ids) {
		t.Fatalf("arrived %v, want %v", got, ids)
	}
	var first time.Duration
	rcv.Locked(func() { first = failedAt[1].Sub(failedAt[0]) })
	if first > 2*time.Second {
		t.Errorf("first retry after %s, want within 2s", first)
	}
	t.Logf("first retry after %s", first)
	// The last delivery is logged just after the receiver answers.
	webhooktest.WaitFor(t, "every attempt logged", 10*time.Second, func() bool { return len(e.deliveries(h)) >= 5 })
	ds := e.deliveries(h)
	var statuses []string
	for _, d := range slices.Backward(ds) {
		statuses = append(statuses, fmt.Sprintf("%d:%s:%d", d.Attempt, d.Status, d.HTTPStatus))
	}
	want := []string{"1:retrying:500", "2:retrying:500", "3:retrying:500", "4:delivered:200", "1:delivered:200"}
	if !slices.Equal(statuses, want) {
		t.Fatalf("deliveries log (oldest first) %v, want %v", statuses, want)
	}
	if !strings.Contains(ds[len(ds)-1].Error, "500") {
		t.Errorf("a failed attempt's error: %q", ds[len(ds)-1].Error)
	}
}

// TestReceiverDown: events made while nobody listens arrive, in order,
// once the receiver is back.
func TestReceiverDown(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	e.engine(fast())
	e.hook(rcv, store.ActionAccountCreate)
	rcv.Down()
	ids := e.accounts(10)
	// The engine is retrying the first: its attempts are logged.
	h, _ := e.store.ListWebhooks(e.ctx(), e.org)
	webhooktest.WaitFor(t, "attempts fail while the receiver is down", 10*time.Second, func() bool { return len(e.deliveries(&h[0])) >= 2 })
	rcv.Up()
	webhooktest.WaitFor(t, "every event arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) >= 10 })
	got, _ := webhooktest.FirstOf(rcv.Arrivals())
	if tg := webhooktest.Targets(got, store.ActionAccountCreate); !slices.Equal(tg, ids) {
		t.Fatalf("arrived %v, want %v", tg, ids)
	}
	if d := e.deliveries(&h[0]); d[len(d)-1].Status != store.DeliveryRetrying || !strings.Contains(d[len(d)-1].Error, "refused") {
		t.Errorf("the first attempt is logged as %+v", d[len(d)-1])
	}
}

// TestGivenUp: an event retried for RetryFor is recorded as failed and
// the next one goes on.
func TestGivenUp(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	doomed := ""
	rcv.Answer(func(n int, a webhooktest.Arrival) int {
		if doomed == "" && a.Payload.Type == store.ActionAccountCreate {
			doomed = a.ID
		}
		if a.ID == doomed {
			return 503
		}
		return 200
	})
	cfg := fast()
	cfg.RetryFor = 300 * time.Millisecond
	e.engine(cfg)
	h := e.hook(rcv, store.ActionAccountCreate)
	ids := e.accounts(2)
	webhooktest.WaitFor(t, "the second event arrived", 10*time.Second, func() bool {
		return slices.Contains(webhooktest.Targets(rcv.Arrivals(), store.ActionAccountCreate), ids[1])
	})
	webhooktest.WaitFor(t, "its delivery is logged", 10*time.Second, func() bool {
		ds := e.deliveries(h)
		return len(ds) > 0 && ds[0].Status == store.DeliveryDelivered
	})
	ds := e.deliveries(h)
	failed := 0
	for _, d := range ds {
		if d.Status == store.DeliveryFailed {
			failed++
		}
	}
	if failed != 1 || ds[0].Status != store.DeliveryDelivered || ds[1].Status != store.DeliveryFailed || ds[1].HTTPStatus != 503 {
		t.Fatalf("deliveries log %+v", ds)
	}
}

// TestRestrictedAddressAtDelivery: without webhook_allow_private, a
// delivery to a loopback address is refused when dialling, whatever the
// stored URL; allowing it lets the same event through.
func TestRestrictedAddressAtDelivery(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	cfg := fast()
	cfg.AllowPrivate = false
	eng, _ := e.engine(cfg)
	h := e.hook(rcv, store.ActionAccountCreate) // stored directly, as if DNS had changed since
	e.accounts(1)
	webhooktest.WaitFor(t, "an attempt was refused", 10*time.Second, func() bool { return len(e.deliveries(h)) > 0 })
	if d := e.deliveries(h)[0]; !strings.Contains(d.Error, "loopback") || d.Status != store.DeliveryRetrying {
		t.Fatalf("attempt %+v", d)
	}
	if n := len(rcv.Arrivals()); n != 0 {
		t.Fatalf("the receiver got %d deliveries", n)
	}
	eng.SetAllowPrivate(true)
	webhooktest.WaitFor(t, "the event arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) == 1 })
}

// TestRedirectNotFollowed: a 3xx is a failed attempt; its target never
// hears of the event.
func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	rcv, elsewhere := webhooktest.Start(t), webhooktest.Start(t)
	rcv.Answer(func(int, webhooktest.Arrival) int { return 307 })
	e.engine(fast())
	h := e.hook(rcv, store.ActionAccountCreate)
	e.accounts(1)
	webhooktest.WaitFor(t, "attempts", 10*time.Second, func() bool { return len(e.deliveries(h)) >= 2 })
	if d := e.deliveries(h)[0]; d.HTTPStatus != 307 || d.Status != store.DeliveryRetrying {
		t.Fatalf("attempt %+v", d)
	}
	if n := len(elsewhere.Arrivals()); n != 0 {
		t.Fatal("a redirect was followed")
	}
}

// TestCursorSurvivesRestart: an engine stopped and another started on the
// same etcd delivers the rest, nothing acknowledged twice.
func TestCursorSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	eng, _ := e.engine(fast())
	e.hook(rcv, store.ActionAccountCreate)
	ids := e.accounts(5)
	webhooktest.WaitFor(t, "5 arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) == 5 })
	eng.Close()
	ids = append(ids, e.accounts(5)...)
	e.engine(fast())
	webhooktest.WaitFor(t, "10 arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) >= 10 })
	got, dups := webhooktest.FirstOf(rcv.Arrivals())
	if tg := webhooktest.Targets(got, store.ActionAccountCreate); !slices.Equal(tg, ids) || dups != 0 {
		t.Fatalf("arrived %v (%d repeated), want %v", tg, dups, ids)
	}
}

// TestCompactedHistory: the engine catches up from the audit keys when
// etcd has compacted the history past its cursor.
func TestCompactedHistory(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	eng, _ := e.engine(fast())
	e.hook(rcv, store.ActionAccountCreate)
	ids := e.accounts(2)
	webhooktest.WaitFor(t, "2 arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) == 2 })
	eng.Close()
	ids = append(ids, e.accounts(150)...) // more than a page of catching up
	e.etcd.Compact(e.ctx())
	e.engine(fast())
	webhooktest.WaitFor(t, "all arrived", 30*time.Second, func() bool { return len(rcv.Arrivals()) >= len(ids) })
	got, dups := webhooktest.FirstOf(rcv.Arrivals())
	if tg := webhooktest.Targets(got, store.ActionAccountCreate); !slices.Equal(tg, ids) || dups != 0 {
		t.Fatalf("arrived %d events (%d repeated), want %d in order", len(tg), dups, len(ids))
	}
	// And it follows on from there.
	more := e.accounts(1)
	webhooktest.WaitFor(t, "one more", 10*time.Second, func() bool { return len(rcv.Arrivals()) == len(ids)+1 })
	if got := rcv.Arrivals(); got[len(got)-1].Payload.Data.Target != more[0] {
		t.Fatal("the event after catching up is not last")
	}
}

// TestOneLeaderAndFailover: of two engines one delivers; when its
// process "dies" (its etcd client is cut, so its lease expires), the
// other takes over, and nothing is lost.
func TestOneLeaderAndFailover(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	a, ca := e.engine(fast())
	webhooktest.WaitFor(t, "a leads", 10*time.Second, a.Leading)
	b, _ := e.engine(fast())
	e.hook(rcv, store.ActionAccountCreate)
	ids := e.accounts(5)
	webhooktest.WaitFor(t, "5 arrived", 10*time.Second, func() bool { return len(rcv.Arrivals()) == 5 })
	if b.Leading() || b.Terms() != 0 {
		t.Fatal("two engines lead at once")
	}
	ca.Close() // a crash: no resignation, the lease expires
	killed := time.Now()
	ids = append(ids, e.accounts(5)...)
	webhooktest.WaitFor(t, "b leads", 15*time.Second, b.Leading)
	t.Logf("b took over %s after a died", time.Since(killed))
	// A takeover may deliver again what a sent but had not yet noted
	// (at least once), so wait for ten distinct events, not ten arrivals.
	webhooktest.WaitFor(t, "10 distinct arrived", 10*time.Second, func() bool {
		got, _ := webhooktest.FirstOf(rcv.Arrivals())
		return len(got) >= 10
	})
	got, _ := webhooktest.FirstOf(rcv.Arrivals())
	if tg := webhooktest.Targets(got, store.ActionAccountCreate); !slices.Equal(tg, ids) {
		t.Fatalf("arrived %v, want %v", tg, ids)
	}
}

// TestGracefulHandover: an engine that closes resigns, and another takes
// over at once rather than after the lease's TTL.
func TestGracefulHandover(t *testing.T) {
	e := newEnv(t)
	cfg := fast()
	cfg.LeaderTTL = 30 * time.Second
	a, _ := e.engine(cfg)
	webhooktest.WaitFor(t, "a leads", 10*time.Second, a.Leading)
	b, _ := e.engine(cfg)
	start := time.Now()
	a.Close()
	webhooktest.WaitFor(t, "b leads", 5*time.Second, b.Leading)
	t.Logf("handover in %s", time.Since(start))
}

// TestRotatedSecretSignsBesideTheNew: after a rotation with an overlap,
// deliveries carry a signature by each secret until the overlap ends; a
// rotation without one signs with the new secret alone. (The engine learns
// of a rotation through its watch of the webhooks, so the first deliveries
// after one may still be signed as before: the receiver takes either.)
func TestRotatedSecretSignsBesideTheNew(t *testing.T) {
	e := newEnv(t)
	rcv := webhooktest.Start(t)
	e.engine(fast())
	h := e.hook(rcv)
	old, fresh, newer := h.Secret, NewSecret(), NewSecret()
	rcv.AcceptSecrets(old, fresh, newer)
	// arrival creates accounts until one's delivery satisfies ok.
	arrival := func(what string, ok func(a webhooktest.Arrival) bool) webhooktest.Arrival {
		t.Helper()
		var found webhooktest.Arrival
		target := e.accounts(1)[0]
		webhooktest.WaitFor(t, what, 10*time.Second, func() bool {
			for _, a := range rcv.Arrivals() {
				if a.Payload.Data.Target == target {
					if ok(a) {
						found = a
						return true
					}
					target = e.accounts(1)[0] // signed as before the rotation: another
				}
			}
			return false
		})
		return found
	}
	signedBy := func(a webhooktest.Arrival, secret string) bool {
		return webhooktest.Verify(secret, a.ID, strconv.FormatInt(a.Timestamp, 10), a.Body, a.Signature) == nil
	}

	const overlap = 2 * time.Second
	rotated, err := e.store.RotateWebhookSecret(e.ctx(), e.org, h.ID, fresh, overlap, operator)
	if err != nil {
		t.Fatal(err)
	}
	a := arrival("a delivery signed by both secrets", func(a webhooktest.Arrival) bool { return signedBy(a, fresh) })
	if n := len(strings.Fields(a.Signature)); n != 2 || !signedBy(a, old) {
		t.Fatalf("within the overlap: %d signatures (%q), the old secret's valid: %v", n, a.Signature, signedBy(a, old))
	}
	// After it, the new secret alone.
	webhooktest.WaitFor(t, "the overlap ended", overlap+5*time.Second, func() bool {
		return time.Now().After(rotated.PreviousSecretExpiresAt.Add(time.Second)) // delivery timestamps are in seconds
	})
	a = arrival("a delivery after the overlap", func(webhooktest.Arrival) bool { return true })
	if len(strings.Fields(a.Signature)) != 1 || signedBy(a, old) || !signedBy(a, fresh) {
		t.Errorf("after the overlap: %q", a.Signature)
	}
	// A rotation without an overlap: the replaced secret stops at once.
	if _, err := e.store.RotateWebhookSecret(e.ctx(), e.org, h.ID, newer, 0, operator); err != nil {
		t.Fatal(err)
	}
	a = arrival("a delivery signed by the newest secret", func(a webhooktest.Arrival) bool { return signedBy(a, newer) })
	if len(strings.Fields(a.Signature)) != 1 || signedBy(a, fresh) {
		t.Errorf("a rotation without overlap: the replaced secret still signs: %q", a.Signature)
	}
}
