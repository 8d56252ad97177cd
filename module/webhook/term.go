package webhook

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/store"
)

// term is one leadership: it follows the webhooks in etcd and runs a
// worker per webhook, and the expiry scan, until the leadership ends.
type term struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelFunc // ends the term (leadership lost)
	lead   store.Leadership

	workers map[string]*worker // by "<org>/<wh>"
	wg      sync.WaitGroup
}

func newTerm(e *Engine, ctx context.Context, cancel context.CancelFunc, lead store.Leadership) *term {
	return &term{e: e, ctx: ctx, cancel: cancel, lead: lead, workers: map[string]*worker{}}
}

// run leads until the term's context ends, then stops every worker.
func (t *term) run() {
	t.wg.Go(t.scanExpiring)
	t.wg.Go(t.pruneAudit)
	t.wg.Go(t.scanDormant)
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for t.ctx.Err() == nil {
		hooks, rev, err := t.e.store.AllWebhooks(t.ctx)
		if err != nil {
			t.e.log.Debug("reading the webhooks", zap.Error(err))
			bo.Wait(t.ctx)
			continue
		}
		t.reconcile(hooks)
		err = t.follow(rev + 1)
		if t.ctx.Err() != nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			t.e.log.Debug("watching the webhooks: resuming", zap.Error(err))
		}
		bo.Wait(t.ctx)
	}
	t.cancel()
	for _, w := range t.workers {
		w.stop()
	}
	t.wg.Wait()
}

// reconcile makes the workers those of hooks: new ones start, changed ones
// take the change, missing ones stop.
func (t *term) reconcile(hooks []store.Webhook) {
	keep := map[string]bool{}
	for i := range hooks {
		h := &hooks[i]
		keep[h.Org+"/"+h.ID] = true
		t.upsert(h)
	}
	// Sorted, so that what happens does not depend on map order.
	var gone []string
	for k := range t.workers {
		if !keep[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		t.workers[k].stop()
		delete(t.workers, k)
	}
}

// upsert starts a worker for a webhook or hands it the webhook's new
// settings.
func (t *term) upsert(h *store.Webhook) {
	k := h.Org + "/" + h.ID
	if w, ok := t.workers[k]; ok {
		if w.createRevision == h.CreateRevision {
			w.update(h)
			return
		}
		w.stop()
	}
	w := newWorker(t, h)
	t.workers[k] = w
	t.wg.Go(w.run)
}

// follow applies changes to webhooks from revision from on, until the
// watch breaks or the term ends.
func (t *term) follow(from int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(t.ctx))
	defer cancel()
	prefix := t.e.store.WebhooksPrefix()
	for wr := range t.e.store.Client().Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			if ev.Type == mvccpb.DELETE {
				k := strings.TrimPrefix(key, prefix) // "<org>/<wh>"
				if w, ok := t.workers[k]; ok {
					w.stop()
					delete(t.workers, k)
				}
				continue
			}
			h, err := store.DecodeWebhook(ev.Kv.Key, ev.Kv.Value, ev.Kv.CreateRevision)
			if err != nil {
				t.e.log.Error("a stored webhook cannot be read; it gets no deliveries", zap.String("key", key), zap.Error(err))
				continue
			}
			t.upsert(h)
		}
	}
	return errors.New("watch closed")
}
