package ratelimit

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
)

// Keys under the limiter's prefix:
//
//	gateways/<gateway>        one per live gateway, under its lease;
//	                          its value is Config.Announce
//	demand/<user>/<gateway>   "<window start>:<admitted>:<demand>": what a
//	                          gateway admitted for a hot user in the window
//	                          that began at <window start> (unix ns), and
//	                          its demand per window; under the gateway's
//	                          lease
//
// A gateway that falls silent loses its lease, and with it its keys: the
// others divide its share. A gateway that stops says what it admitted in
// the current windows, with no demand, under a lease lasting until those
// windows end: its share goes to the others, what it spent stays spent.
func (l *Limiter) gatewayKey(gw string) string { return l.prefix + "gateways/" + gw }
func (l *Limiter) demandKey(user, gw string) string {
	return l.prefix + "demand/" + user + "/" + gw
}

// changeRatio is how far demand must move from what was published before
// it is published again; and how much of the budget a gateway admits in a
// window before it says so again.
const changeRatio = 0.1

// maxOps bounds the operations of one transaction (etcd's default limit is
// 128).
const maxOps = 100

// register holds this gateway's lease and publishes demand while it does;
// when the lease is lost it registers again.
func (l *Limiter) register() {
	defer l.wg.Done()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for lost := false; l.ctx.Err() == nil; {
		err := l.holdLease(func() {
			if lost {
				l.log.Info("rate limits shared with the cluster again", zap.String("gateway", l.cfg.Gateway))
				lost = false
			}
			bo.Reset()
		})
		l.stats.registered.Store(false)
		if l.ctx.Err() != nil {
			return
		}
		if !lost {
			// The shares last known stay in force meanwhile.
			l.log.Warn("rate limits: cannot register with etcd; each hot user keeps the share it last had here",
				zap.String("gateway", l.cfg.Gateway), zap.Error(err))
			lost = true
		}
		bo.Wait(l.ctx)
	}
}

// holdLease registers under a new lease and publishes every interval until
// the lease is lost or the limiter closes.
func (l *Limiter) holdLease(registered func()) error {
	ttl := max(int64(l.cfg.LeaseTTL/time.Second), 1)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.LeaseTTL)
	lease, err := l.client.Grant(ctx, ttl)
	if err == nil {
		_, err = l.client.Put(ctx, l.gatewayKey(l.cfg.Gateway), l.cfg.Announce, clientv3.WithLease(lease.ID))
	}
	cancel()
	if err != nil {
		return err
	}
	defer l.leave(lease.ID)
	kctx, kcancel := context.WithCancel(l.ctx)
	defer kcancel()
	alive, err := l.client.KeepAlive(kctx, lease.ID)
	if err != nil {
		return err
	}
	l.stats.registered.Store(true)
	registered()
	// Whatever was published under an earlier lease went with it.
	l.eachHot(func(u *userState) { u.written = false })

	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return errClosed
		case _, ok := <-alive:
			if !ok {
				return errLeaseLost
			}
		case <-tick.C:
			l.publish(lease.ID)
		case <-l.wake:
			l.publish(lease.ID)
		case <-sweep.C:
			l.sweep()
		}
	}
}

func (l *Limiter) eachHot(f func(u *userState)) {
	l.hotMu.Lock()
	list := make([]*userState, 0, len(l.hot))
	for _, u := range l.hot {
		list = append(list, u)
	}
	l.hotMu.Unlock()
	for _, u := range list {
		u.mu.Lock()
		f(u)
		u.mu.Unlock()
	}
}

// publish writes what changed of hot users — demand moved by more than
// 10%, or a tenth of the budget admitted since the last write — and
// withdraws users no longer hot, in as few transactions as it can.
func (l *Limiter) publish(lease clientv3.LeaseID) {
	defer l.stats.rounds.Add(1)
	now := l.cfg.now().UnixNano()
	var changes []change
	var cold []string
	l.hotMu.Lock()
	for id, u := range l.hot {
		u.mu.Lock()
		u.roll(now, l)
		d := u.demand()
		if u.hot && u.offered*4 < u.initial && u.lastOffered*4 < u.initial {
			u.hot = false
		}
		want := d > 0 && (u.hot || len(u.peers) > 0)
		counted := u.admitted
		if u.pubStart == u.start {
			counted -= u.pubAdmitted
		}
		switch {
		case want && (!u.written || math.Abs(d-u.published) > changeRatio*u.published ||
			float64(counted) >= max(changeRatio*float64(u.requests), 1)):
			changes = append(changes, change{u, u.start, u.admitted, d})
		case !want && u.published > 0:
			changes = append(changes, change{u, 0, 0, 0})
		case !want && len(u.peers) == 0:
			cold = append(cold, id)
		}
		u.mu.Unlock()
	}
	for _, id := range cold {
		delete(l.hot, id)
	}
	l.hotMu.Unlock()
	l.write(lease, changes, l.cfg.Interval*4, true)
}

// change is one key to write: a user's count and demand, or its
// withdrawal (demand 0 and no count).
type change struct {
	u        *userState
	start    int64
	admitted int64
	demand   float64
}

// write sends changes in transactions of at most maxOps keys; applied
// says whether the users' states take the written values.
func (l *Limiter) write(lease clientv3.LeaseID, changes []change, timeout time.Duration, applied bool) {
	for len(changes) > 0 {
		batch := changes[:min(len(changes), maxOps)]
		changes = changes[len(batch):]
		ops := make([]clientv3.Op, len(batch))
		for i, c := range batch {
			key := l.demandKey(c.u.id, l.cfg.Gateway)
			if c.demand > 0 || c.admitted > 0 {
				ops[i] = clientv3.OpPut(key, formatRecord(c.start, c.admitted, c.demand), clientv3.WithLease(lease))
			} else {
				ops[i] = clientv3.OpDelete(key)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := l.client.Txn(ctx).Then(ops...).Commit()
		cancel()
		l.stats.writes.Add(1)
		if err != nil {
			if l.ctx.Err() == nil {
				l.log.Debug("rate limits: publishing demand failed", zap.Error(err))
			}
			return
		}
		for _, c := range batch {
			if c.demand > 0 {
				l.stats.published.Add(1)
			} else {
				l.stats.withdrawn.Add(1)
			}
			if !applied {
				continue
			}
			c.u.mu.Lock()
			c.u.published, c.u.written = c.demand, c.demand > 0
			c.u.pubStart, c.u.pubAdmitted = c.start, c.admitted
			c.u.reshare(l)
			c.u.mu.Unlock()
		}
	}
}

// leave hands this gateway's shares over: it revokes its lease, and says
// what it admitted in the windows still running under a lease of their
// own that lasts until the last of them ends, so that the others do not
// admit it again.
func (l *Limiter) leave(lease clientv3.LeaseID) {
	now := l.cfg.now().UnixNano()
	var changes []change
	var last int64
	l.users.Range(func(_, v any) bool {
		u := v.(*userState)
		u.mu.Lock()
		if u.end > now && u.admitted > 0 {
			changes = append(changes, change{u, u.start, u.admitted, 0})
			last = max(last, u.end)
		}
		u.mu.Unlock()
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if len(changes) > 0 {
		ttl := min(max(int64(time.Duration(last-now)/time.Second)+1, 1), int64(MaxSpentTTL/time.Second))
		if spent, err := l.client.Grant(ctx, ttl); err == nil {
			l.write(spent.ID, changes, time.Second, false)
		}
	}
	_, _ = l.client.Revoke(ctx, lease)
}

// MaxSpentTTL bounds how long a stopped gateway's counts stay: the longest
// window.
const MaxSpentTTL = 24 * time.Hour

// sweepInterval is how often state of users gone quiet is dropped.
const sweepInterval = 10 * time.Second

// sweep drops the state of users with no traffic here, no demand published
// by anyone, for two windows and a sweep: memory follows the users active
// now, not every user ever seen.
func (l *Limiter) sweep() {
	now := l.cfg.now().UnixNano()
	l.users.Range(func(key, v any) bool {
		u := v.(*userState)
		u.mu.Lock()
		defer u.mu.Unlock()
		u.roll(now, l)
		if u.offered > 0 || u.lastOffered > 0 || len(u.peers) > 0 || u.published > 0 || u.hot {
			u.idleSince = 0
			return true
		}
		if u.idleSince == 0 {
			u.idleSince = now
			return true
		}
		if now-u.idleSince > 2*int64(u.window)+int64(sweepInterval) {
			u.dropped = true
			l.users.Delete(key)
		}
		return true
	})
}

// follow keeps this gateway's view of the others — who is registered,
// what each publishes — in step with etcd, until the limiter closes.
func (l *Limiter) follow() {
	defer l.wg.Done()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for l.ctx.Err() == nil {
		gateways := map[string]bool{}
		rev, err := l.load(gateways)
		if err == nil {
			bo.Reset()
			err = l.watch(rev+1, gateways)
		}
		if l.ctx.Err() != nil {
			return
		}
		l.log.Debug("rate limits: following the other gateways again", zap.Error(err))
		bo.Wait(l.ctx)
	}
}

// load reads every registration and published demand, replacing what this
// gateway knew, and returns the revision read.
func (l *Limiter) load(gateways map[string]bool) (int64, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.LeaseTTL)
	defer cancel()
	resp, err := l.client.Get(ctx, l.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	peers := map[string]map[string]peer{}
	for _, kv := range resp.Kvs {
		switch kind, user, gw := l.parseKey(string(kv.Key)); kind {
		case keyGateway:
			gateways[gw] = true
		case keyDemand:
			if p, ok := parseRecord(kv.Value); ok && gw != l.cfg.Gateway {
				if peers[user] == nil {
					peers[user] = map[string]peer{}
				}
				peers[user][gw] = p
			}
		}
	}
	l.setGateways(gateways)
	l.users.Range(func(key, v any) bool {
		if _, ok := peers[key.(string)]; !ok {
			u := v.(*userState)
			u.mu.Lock()
			clear(u.peers)
			u.reshare(l)
			u.mu.Unlock()
		}
		return true
	})
	for user, p := range peers {
		l.setPeers(user, func(m map[string]peer) {
			clear(m)
			for gw, d := range p {
				m[gw] = d
			}
		})
	}
	return resp.Header.Revision, nil
}

// watch applies every change from rev until the watch breaks.
func (l *Limiter) watch(rev int64, gateways map[string]bool) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(l.ctx))
	defer cancel()
	for wr := range l.client.Watch(ctx, l.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		changedGateways := false
		for _, ev := range wr.Events {
			kind, user, gw := l.parseKey(string(ev.Kv.Key))
			put := ev.Type == mvccpb.PUT
			switch {
			case kind == keyGateway:
				if gateways[gw] != put {
					changedGateways = true
				}
				if put {
					gateways[gw] = true
				} else {
					delete(gateways, gw)
				}
			case kind == keyDemand && gw != l.cfg.Gateway:
				p, ok := parseRecord(ev.Kv.Value)
				l.setPeers(user, func(m map[string]peer) {
					if put && ok {
						m[gw] = p
					} else {
						delete(m, gw)
					}
				})
			}
		}
		if changedGateways {
			l.setGateways(gateways)
		}
	}
	return errWatchClosed
}

// setGateways takes the registered gateways and reshares every budget.
func (l *Limiter) setGateways(gateways map[string]bool) {
	ids := make([]string, 0, len(gateways)+1)
	for id := range gateways {
		ids = append(ids, id)
	}
	ids = append(ids, l.cfg.Gateway) // this one, registered or about to be
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if slices.Equal(ids, *l.registry.Load()) {
		return
	}
	l.registry.Store(&ids)
	l.users.Range(func(_, v any) bool {
		u := v.(*userState)
		u.mu.Lock()
		u.reshare(l)
		u.mu.Unlock()
		return true
	})
}

// setPeers changes what the user's state knows of other gateways' demand
// and reshares its budget.
func (l *Limiter) setPeers(user string, change func(map[string]peer)) {
	u := l.lockedState(user)
	change(u.peers)
	u.reshare(l)
	u.mu.Unlock()
	l.markHot(user, u)
}

type keyKind int

const (
	keyOther keyKind = iota
	keyGateway
	keyDemand
)

func (l *Limiter) parseKey(key string) (kind keyKind, user, gw string) {
	rest, ok := strings.CutPrefix(key, l.prefix)
	if !ok {
		return keyOther, "", ""
	}
	if gw, ok := strings.CutPrefix(rest, "gateways/"); ok && gw != "" && !strings.Contains(gw, "/") {
		return keyGateway, "", gw
	}
	if rest, ok := strings.CutPrefix(rest, "demand/"); ok {
		if user, gw, ok := strings.Cut(rest, "/"); ok && user != "" && gw != "" && !strings.Contains(gw, "/") {
			return keyDemand, user, gw
		}
	}
	return keyOther, "", ""
}

// formatRecord writes what a gateway publishes for a user.
func formatRecord(start, admitted int64, demand float64) string {
	return strconv.FormatInt(start, 10) + ":" + strconv.FormatInt(admitted, 10) + ":" + strconv.FormatFloat(demand, 'f', -1, 64)
}

// parseRecord reads what another gateway published; anything malformed,
// negative or not finite is nothing.
func parseRecord(v []byte) (peer, bool) {
	parts := strings.Split(string(v), ":")
	if len(parts) != 3 {
		return peer{}, false
	}
	start, err1 := strconv.ParseInt(parts[0], 10, 64)
	admitted, err2 := strconv.ParseInt(parts[1], 10, 64)
	demand, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || admitted < 0 || demand < 0 || math.IsInf(demand, 0) || math.IsNaN(demand) {
		return peer{}, false
	}
	return peer{start: start, admitted: admitted, demand: demand}, true
}
