package webhook

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
)

// catchUpPage is how many audit events one catch-up read returns.
const catchUpPage = 100

// skippedSaveInterval bounds how often a cursor moved only past events the
// webhook does not subscribe to is written: losing such a move costs a
// second look at those events, never a delivery.
const skippedSaveInterval = 5 * time.Second

// recordTimeout bounds the writing of one attempt.
const recordTimeout = 5 * time.Second

// stopGrace is how long an attempt under way may go on once its term has
// ended.
const stopGrace = 2 * time.Second

// worker delivers one webhook's events, one at a time, in audit order.
type worker struct {
	t              *term
	org, id        string
	createRevision int64
	hook           atomic.Pointer[store.Webhook] // the latest settings
	poke           chan struct{}                 // settings changed: retry now
	ctx            context.Context
	cancel         context.CancelFunc

	cursor    int64 // every event up to this revision is done with
	saved     int64 // the cursor as stored
	savedAt   time.Time
	unwatched bool // the watch was dropped while an event is retried
}

func newWorker(t *term, h *store.Webhook) *worker {
	w := &worker{t: t, org: h.Org, id: h.ID, createRevision: h.CreateRevision, poke: make(chan struct{}, 1)}
	w.hook.Store(h)
	w.ctx, w.cancel = context.WithCancel(t.ctx)
	return w
}

// update hands the worker new settings; a retry waiting starts at once.
func (w *worker) update(h *store.Webhook) {
	w.hook.Store(h)
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// stop ends the worker; the term waits for it.
func (w *worker) stop() { w.cancel() }

// errRewatch: the watch was dropped during retries; follow again from
// the cursor.
var errRewatch = errors.New("watch dropped during retries")

func (w *worker) log() *zap.Logger {
	return w.t.e.log.With(zap.String("org", w.org), zap.String("webhook", w.id))
}

func (w *worker) run() {
	e := w.t.e
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		c, err := e.store.WebhookCursor(w.ctx, w.hook.Load())
		if err == nil {
			w.cursor, w.saved, w.savedAt = c, c, time.Now()
			break
		}
		if w.ctx.Err() != nil {
			return
		}
		w.log().Debug("reading the webhook's cursor", zap.Error(err))
		bo.Wait(w.ctx)
	}
	defer w.saveFinal()
	for w.ctx.Err() == nil {
		err := w.follow()
		if errors.Is(err, rpctypes.ErrCompacted) {
			// The history from the cursor is gone from etcd's log, not
			// the events: they are read from the audit keys.
			w.log().Info("audit history compacted past the webhook's cursor; reading the audit events instead",
				zap.Int64("cursor", w.cursor))
			err = w.catchUp()
		}
		switch {
		case w.ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrNotLeader):
			w.t.cancel()
			return
		case errors.Is(err, store.ErrWebhookGone):
			return
		case err == nil, errors.Is(err, errRewatch):
			bo.Reset()
			continue
		}
		w.log().Debug("following the audit trail: resuming", zap.Int64("cursor", w.cursor), zap.Error(err))
		bo.Wait(w.ctx)
	}
}

// follow watches the organization's audit events from the cursor on and
// delivers each, until the watch breaks.
func (w *worker) follow() error {
	e := w.t.e
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(w.ctx))
	defer cancel()
	w.unwatched = false
	wch := e.store.Client().Watch(ctx, e.store.AuditPrefix(w.org), clientv3.WithPrefix(), clientv3.WithRev(w.cursor+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type != mvccpb.PUT || ev.Kv.ModRevision <= w.cursor {
				continue
			}
			if err := w.handle(ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, cancel); err != nil {
				return err
			}
			if w.unwatched {
				return errRewatch
			}
		}
		if err := w.saveSkipped(); err != nil {
			return err
		}
	}
	if w.ctx.Err() != nil {
		return w.ctx.Err()
	}
	return errors.New("watch closed")
}

// catchUp reads the audit events after the cursor from the audit keys, in
// audit order, and delivers each; at the end the cursor is the revision
// read at, from which a watch can go on.
func (w *worker) catchUp() error {
	e := w.t.e
	var at int64
	for {
		events, rev, more, err := e.store.EventsAfter(w.ctx, w.org, w.cursor, at, catchUpPage)
		if err != nil {
			return err
		}
		at = rev
		for i := range events {
			if err := w.deliverEvent(&events[i], nil); err != nil {
				return err
			}
		}
		if !more {
			w.cursor = max(w.cursor, rev)
			return w.saveSkipped()
		}
	}
}

// handle delivers one event as read from etcd.
func (w *worker) handle(key, value []byte, rev int64, stopWatch context.CancelFunc) error {
	ev, err := w.t.e.store.DecodeEvent(key, value, rev)
	if err != nil {
		w.log().Error("an audit event cannot be read; skipping it", zap.ByteString("key", key), zap.Error(err))
		w.cursor = rev
		return nil
	}
	return w.deliverEvent(ev, stopWatch)
}

// deliverEvent delivers one event if the webhook subscribes to it: it
// attempts until the receiver answers 2xx, the event has been retried for
// RetryFor, or the webhook is disabled; each attempt is recorded, and the
// cursor moves past the event with the last. While it retries, the watch
// feeding it (stopWatch) is dropped, so that events piling up meanwhile
// stay in etcd rather than in memory.
func (w *worker) deliverEvent(ev *store.Event, stopWatch context.CancelFunc) error {
	e := w.t.e
	if h := w.hook.Load(); h.Disabled || !h.Subscribes(ev.Action) {
		w.cursor = ev.Revision
		return nil
	}
	first := time.Now()
	for attempt := 1; ; attempt++ {
		h := w.hook.Load()
		d := store.Delivery{EventID: ev.Seq, Type: ev.Action, Attempt: attempt}
		var httpStatus int
		var err error
		if h.Disabled {
			err = errors.New("the webhook was disabled before the event was delivered")
		} else {
			httpStatus, err = w.attempt(h, ev)
		}
		if err != nil && w.ctx.Err() != nil {
			return w.ctx.Err() // the term ends: the next leader delivers it
		}
		d.Time, d.HTTPStatus = time.Now().UTC(), httpStatus
		done := err == nil || h.Disabled || time.Since(first) >= e.cfg.RetryFor
		switch {
		case err == nil:
			d.Status = store.DeliveryDelivered
			metrics.WebhookAttemptsDelivered.Inc()
			metrics.WebhookLatency.Observe(time.Since(ev.Time).Seconds())
		case done:
			d.Status, d.Error = store.DeliveryFailed, err.Error()
			metrics.WebhookAttemptsFailed.Inc()
			w.log().Warn("webhook event given up", zap.String("event", ev.Seq), zap.String("type", ev.Action),
				zap.Int("attempts", attempt), zap.Error(err))
		default:
			d.Status, d.Error = store.DeliveryRetrying, err.Error()
			metrics.WebhookAttemptsRetrying.Inc()
			w.log().Debug("webhook delivery failed; retrying", zap.String("event", ev.Seq), zap.Int("attempt", attempt), zap.Error(err))
		}
		var cursor int64
		if done {
			cursor = ev.Revision
		}
		if err := w.record(&d, cursor); err != nil {
			return err
		}
		if done {
			w.cursor = ev.Revision
			return nil
		}
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
		if stopWatch != nil && !w.unwatched {
			stopWatch()
			w.unwatched = true
		}
		timer := time.NewTimer(e.retryWait(attempt))
		select {
		case <-timer.C:
		case <-w.poke:
			timer.Stop()
		case <-w.ctx.Done():
			timer.Stop()
			return w.ctx.Err()
		}
	}
}

// attempt makes one delivery attempt. An attempt under way when the term
// ends (a graceful stop, a lost election) gets stopGrace to finish, so
// that its answer can be recorded rather than the event sent again by the
// next leader.
func (w *worker) attempt(h *store.Webhook, ev *store.Event) (int, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(w.ctx))
	defer cancel()
	stop := context.AfterFunc(w.ctx, func() { time.AfterFunc(stopGrace, cancel) })
	defer stop()
	return w.t.e.deliver(ctx, h, ev)
}

// record writes an attempt and, when cursor is set, the cursor. An etcd
// that cannot be reached does not stop deliveries: the attempt goes
// unrecorded, and a cursor not written is written with the next.
//
// An attempt that was made is recorded even when the term is ending (a
// graceful stop): its answer is known, and recording it spares the next
// leader a repeat. The leadership guard keeps a deposed leader's record
// out.
func (w *worker) record(d *store.Delivery, cursor int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), recordTimeout)
	defer cancel()
	err := w.t.e.store.RecordDelivery(ctx, w.t.lead, w.hook.Load(), d, cursor)
	switch {
	case err == nil:
		if cursor > 0 {
			w.saved, w.savedAt = cursor, time.Now()
		}
		return nil
	case errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrWebhookGone):
		return err
	case w.ctx.Err() != nil:
		return w.ctx.Err()
	}
	w.log().Warn("recording a webhook delivery failed", zap.Error(err))
	return nil
}

// saveSkipped writes a cursor moved past events not delivered (not
// subscribed to, or not written with the last attempt), at most every
// skippedSaveInterval.
func (w *worker) saveSkipped() error {
	if w.cursor <= w.saved || time.Since(w.savedAt) < skippedSaveInterval {
		return nil
	}
	return w.record(nil, w.cursor)
}

// saveFinal writes the cursor as the worker ends, if the leadership still
// holds.
func (w *worker) saveFinal() {
	if w.cursor <= w.saved {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	_ = w.t.e.store.RecordDelivery(ctx, w.t.lead, w.hook.Load(), nil, w.cursor)
}
