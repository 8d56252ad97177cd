package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tokengate/tokengate/internal/measure"
	"github.com/tokengate/tokengate/module/webhook"
)

// result is what was measured.
type result struct {
	events        int
	latencies     []time.Duration // event time → delivery read by the receiver
	lost          int             // events not delivered within the timeout
	repeated      int             // deliveries of an event already delivered
	badSignatures int
}

// receiver takes deliveries, checks their signatures and notes when each
// event first arrived.
type receiver struct {
	mu      sync.Mutex
	secret  string
	arrived map[string]time.Time // by event target (the account ID)
	eventAt map[string]time.Time
	seen    map[string]bool // by webhook-id
	notify  chan struct{}
	res     *result
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id, ts := r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderTimestamp)
	var tsec int64
	fmt.Sscan(ts, &tsec)
	want, err := webhook.Sign(rc.secret, id, tsec, body)
	if err != nil || want != r.Header.Get(webhook.HeaderSignature) {
		rc.res.badSignatures++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if rc.seen[id] {
		rc.res.repeated++
		return
	}
	rc.seen[id] = true
	if p.Type != "account.create" {
		return
	}
	rc.arrived[p.Data.Target], rc.eventAt[p.Data.Target] = at, p.Data.Time
	select {
	case rc.notify <- struct{}{}:
	default:
	}
}

func run(cfg measure.Setup) (*result, error) {
	res := &result{events: cfg.Count}
	prefix := fmt.Sprintf("/tgwebhook-%d", time.Now().UnixNano())

	rc := &receiver{arrived: map[string]time.Time{}, eventAt: map[string]time.Time{}, seen: map[string]bool{},
		notify: make(chan struct{}, 1), res: res}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	gw, err := startInstance(cfg, prefix)
	if err != nil {
		return nil, err
	}
	defer gw.Stop()
	if _, err := gw.Admin("POST", "/orgs", map[string]string{"id": "bench", "name": "tgwebhook"}); err != nil {
		return nil, err
	}
	hook, err := gw.Admin("POST", "/orgs/bench/webhooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hook",
		"events": []string{"account.create"}})
	if err != nil {
		return nil, err
	}
	secret, _ := hook["secret"].(string)
	rc.mu.Lock()
	rc.secret = secret
	rc.mu.Unlock()

	fmt.Fprintf(cfg.Log, "writing %d events, one at a time…\n", cfg.Count)
	for range cfg.Count {
		act, err := gw.Admin("POST", "/orgs/bench/accounts", map[string]string{"name": "bench"})
		if err != nil {
			return nil, err
		}
		id, _ := act["id"].(string)
		deadline := time.After(cfg.Timeout)
	wait:
		for {
			rc.mu.Lock()
			at, ok := rc.arrived[id]
			eventAt := rc.eventAt[id]
			rc.mu.Unlock()
			if ok {
				res.latencies = append(res.latencies, at.Sub(eventAt))
				break
			}
			select {
			case <-rc.notify:
			case <-deadline:
				res.lost++
				break wait
			}
		}
	}
	return res, nil
}

// Print writes the figures.
func (r *result) Print(w io.Writer) {
	d := slices.Clone(r.latencies)
	slices.Sort(d)
	p50, p99, pmax := measure.Percentile(d, 50), measure.Percentile(d, 99), measure.Percentile(d, 100)
	fmt.Fprintf(w, "tgwebhook: %d audit events, each written then awaited; delay from the event to its delivery\n", r.events)
	fmt.Fprintf(w, "  p50 %s   p99 %s   max %s\n", measure.Round(p50), measure.Round(p99), measure.Round(pmax))
	fmt.Fprintf(w, "  lost: %d   repeated: %d   bad signatures: %d\n", r.lost, r.repeated, r.badSignatures)
}

// Failed reports whether a delivery was lost or came badly signed.
func (r *result) Failed() bool { return r.lost > 0 || r.badSignatures > 0 }

// startInstance starts the gateway, which may deliver to the receiver on
// loopback; it is ready when its admin API answers.
func startInstance(cfg measure.Setup, prefix string) (*measure.Instance, error) {
	return cfg.StartInstance(measure.InstanceConfig{Name: "the gateway", Dir: cfg.Dir, Prefix: prefix,
		Options: []string{"webhook_allow_private"}})
}
