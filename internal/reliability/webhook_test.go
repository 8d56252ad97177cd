package reliability

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/webhook"
)

// maxTakeover bounds how long after the delivering gateway dies another
// delivers: the leader's lease TTL (5 s) and a campaign, with room for a
// loaded machine.
const maxTakeover = 15 * time.Second

// leaderOf reports which of the gateways says it delivers webhooks, or -1
// when none or several do.
func leaderOf(t *testing.T, gateways []*Gateway) int {
	t.Helper()
	leader := -1
	for i, g := range gateways {
		v, err := g.Metric("tokengate_webhook_leader")
		if err != nil {
			continue // a dead gateway has no metrics
		}
		if v == 1 {
			if leader >= 0 {
				return -1
			}
			leader = i
		}
	}
	return leader
}

// TestWebhookFailover: two gateway processes on the 3-member cluster; the
// one delivering webhooks is killed with kill -9 while events flow, and
// the other takes over within seconds; then a new process is started in
// the place of the dead one, the second deliverer is killed, and the new
// process takes over from the cursor in etcd. Every event arrives at
// least once, in audit order (by first arrival); a repeat carries the
// same webhook-id and the same body.
func TestWebhookFailover(t *testing.T) {
	f := newFixture(t)
	gateways := []*Gateway{
		f.gateway(t, "A", GatewayConfig{WebhookAllowPrivate: true}),
		f.gateway(t, "B", GatewayConfig{WebhookAllowPrivate: true}),
	}
	rcv := webhooktest.Start(t)
	secret := webhook.NewSecret()
	rcv.SetSecret(secret)
	ctx := ctxT(t, 2*time.Minute)
	if _, err := f.writer.CreateWebhook(ctx, store.Webhook{Org: f.org, URL: rcv.URL,
		Events: []string{store.ActionAccountCreate}, Secret: secret}, operator); err != nil {
		t.Fatal(err)
	}
	var leader int
	webhooktest.WaitFor(t, "one gateway leads", 20*time.Second, func() bool {
		leader = leaderOf(t, gateways)
		return leader >= 0
	})
	t.Logf("gateway %s delivers webhooks", gateways[leader].Name)

	// An admin creates an account every 20 ms: an event each.
	var (
		mu      sync.Mutex
		written []string
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a, err := f.writer.CreateAccount(wctx, store.Account{Org: f.org, Name: fmt.Sprint("a", i)}, operator)
			cancel()
			if err != nil {
				t.Errorf("creating an account: %v", err)
				return
			}
			mu.Lock()
			written = append(written, a.ID)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(written)
	}
	webhooktest.WaitFor(t, "events flow", 20*time.Second, func() bool {
		return count() >= 30 && len(rcv.Arrivals()) >= 20
	})

	// Kill the deliverer; then start a gateway in its place (a restart)
	// and kill the one that took over, so that the restarted process
	// resumes from the cursor in etcd.
	for round := range 2 {
		gateways[leader].Kill(t)
		killed := time.Now()
		before := len(rcv.Arrivals())
		survivor := gateways[1-leader]
		webhooktest.WaitFor(t, "the other gateway leads", maxTakeover, func() bool {
			v, err := survivor.Metric("tokengate_webhook_leader")
			return err == nil && v == 1
		})
		tookOver := time.Since(killed)
		webhooktest.WaitFor(t, "deliveries resume", maxTakeover, func() bool { return len(rcv.Arrivals()) > before+5 })
		t.Logf("killed %s: %s led after %s, deliveries resumed after %s", gateways[leader].Name, survivor.Name, tookOver, time.Since(killed))
		if round == 0 {
			gateways[leader] = f.gateway(t, gateways[leader].Name+"'", GatewayConfig{WebhookAllowPrivate: true})
			leader = 1 - leader
			webhooktest.WaitFor(t, "events flow", 20*time.Second, func() bool { return len(rcv.Arrivals()) > before+30 })
		}
	}

	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := slices.Clone(written)
	mu.Unlock()
	webhooktest.WaitFor(t, "every event arrived", 30*time.Second, func() bool {
		got, _ := webhooktest.FirstOf(rcv.Arrivals())
		return len(got) >= len(want)
	})

	all := rcv.Arrivals()
	first, dups := webhooktest.FirstOf(all)
	if got := webhooktest.Targets(first, store.ActionAccountCreate); !slices.Equal(got, want) {
		t.Fatalf("%d events arrived, first arrivals out of audit order or missing (want %d)", len(got), len(want))
	}
	byID := map[string]webhooktest.Arrival{}
	for _, a := range all {
		if prev, ok := byID[a.ID]; ok && !reflect.DeepEqual(prev.Payload, a.Payload) {
			t.Errorf("event %s arrived twice with different bodies: %+v, %+v", a.ID, prev.Payload, a.Payload)
		}
		byID[a.ID] = a
	}
	// At least once: repeats are the events in flight when a leader
	// died, never more than a few.
	if dups > 6 {
		t.Errorf("%d repeated deliveries for two kills", dups)
	}
	t.Logf("%d events, each delivered, %d repeated (same webhook-id and body)", len(want), dups)
}
