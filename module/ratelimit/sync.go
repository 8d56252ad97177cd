package ratelimit

import (
	"context"
	"math"
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
//	gateways/<gateway>        one per live gateway, under its lease
//	demand/<user>/<gateway>   a gateway's demand for a hot user, requests
//	                          per window, under the gateway's lease
//
// A gateway that stops or falls silent loses its lease, and with it its
// keys: the others divide its share.
func (l *Limiter) gatewayKey(gw string) string { return l.prefix + "gateways/" + gw }
func (l *Limiter) demandKey(user, gw string) string {
	return l.prefix + "demand/" + user + "/" + gw
}

// changeRatio is how far demand must move from what was published before
// it is published again.
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
		_, err = l.client.Put(ctx, l.gatewayKey(l.cfg.Gateway), "", clientv3.WithLease(lease.ID))
	}
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		// Leave at once, so that the others take over this share now
		// rather than when the lease would expire.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = l.client.Revoke(ctx, lease.ID)
	}()
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

var errLeaseLost = leaseLost{}

type leaseLost struct{}

func (leaseLost) Error() string { return "lease lost" }

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

// publish writes the demand of hot users that changed, and withdraws the
// demand of users no longer hot, in as few transactions as it can.
func (l *Limiter) publish(lease clientv3.LeaseID) {
	defer l.stats.rounds.Add(1)
	now := l.cfg.now().UnixNano()
	type change struct {
		u      *userState
		demand float64 // 0: withdraw
	}
	var changes []change
	var cold []string
	l.hotMu.Lock()
	for id, u := range l.hot {
		u.mu.Lock()
		u.roll(now)
		d := u.demand()
		if u.hot && d*4 < u.share {
			u.hot = false
		}
		want := d > 0 && (u.hot || len(u.peers) > 0)
		switch {
		case want && (!u.written || math.Abs(d-u.published) > changeRatio*u.published):
			changes = append(changes, change{u, d})
		case !want && u.published > 0:
			changes = append(changes, change{u, 0})
		case !want && len(u.peers) == 0:
			cold = append(cold, id)
		}
		u.mu.Unlock()
	}
	for _, id := range cold {
		delete(l.hot, id)
	}
	l.hotMu.Unlock()

	for len(changes) > 0 {
		batch := changes[:min(len(changes), maxOps)]
		changes = changes[len(batch):]
		ops := make([]clientv3.Op, len(batch))
		for i, c := range batch {
			key := l.demandKey(c.u.id, l.cfg.Gateway)
			if c.demand > 0 {
				ops[i] = clientv3.OpPut(key, strconv.FormatFloat(c.demand, 'f', -1, 64), clientv3.WithLease(lease))
			} else {
				ops[i] = clientv3.OpDelete(key)
			}
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.cfg.Interval*4)
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
			c.u.mu.Lock()
			c.u.published, c.u.written = c.demand, c.demand > 0
			c.u.reshare(l)
			c.u.mu.Unlock()
			if c.demand > 0 {
				l.stats.published.Add(1)
			} else {
				l.stats.withdrawn.Add(1)
			}
		}
	}
}

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
		u.roll(now)
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
		l.stats.watchRestarts.Add(1)
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
	peers := map[string]map[string]float64{}
	for _, kv := range resp.Kvs {
		switch kind, user, gw := l.parseKey(string(kv.Key)); kind {
		case keyGateway:
			gateways[gw] = true
		case keyDemand:
			if d, ok := parseDemand(kv.Value); ok && gw != l.cfg.Gateway {
				if peers[user] == nil {
					peers[user] = map[string]float64{}
				}
				peers[user][gw] = d
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
		l.setPeers(user, func(m map[string]float64) {
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
				d, ok := parseDemand(ev.Kv.Value)
				l.setPeers(user, func(m map[string]float64) {
					if put && ok {
						m[gw] = d
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

var errWatchClosed = watchClosed{}

type watchClosed struct{}

func (watchClosed) Error() string { return "watch closed" }

// setGateways takes the registered gateways and reshares every budget.
func (l *Limiter) setGateways(gateways map[string]bool) {
	n := len(gateways)
	if !gateways[l.cfg.Gateway] {
		n++ // this one, registered or about to be
	}
	if int64(n) == l.gateways.Load() {
		return
	}
	l.gateways.Store(int64(n))
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
func (l *Limiter) setPeers(user string, change func(map[string]float64)) {
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

// parseDemand reads a published demand; anything but a finite positive
// number is none.
func parseDemand(v []byte) (float64, bool) {
	d, err := strconv.ParseFloat(string(v), 64)
	if err != nil || d <= 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return 0, false
	}
	return d, true
}
