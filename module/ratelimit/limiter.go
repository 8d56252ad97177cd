package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultLeaseTTL = 10 * time.Second
	DefaultInterval = 250 * time.Millisecond
)

// Config tunes a Limiter. Zero fields take the defaults.
type Config struct {
	// Gateway names this gateway among those sharing the cluster; default:
	// random.
	Gateway string
	// LeaseTTL is how long after its last keep-alive a gateway that fell
	// silent still holds its share: then the others divide it.
	LeaseTTL time.Duration
	// Interval is how often demand is published and stale state dropped.
	Interval time.Duration
	// Logger receives registration losses and recoveries. Default: none.
	Logger *zap.Logger

	// now is the clock; tests replace it.
	now func() time.Time
}

func (c *Config) fill() {
	if c.Gateway == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.Gateway = "gw-" + hex.EncodeToString(b)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
}

// Limiter decides, from memory, whether a user's request fits the user's
// budget, and shares each hot user's budget with the other gateways of
// the cluster through etcd, in the background.
type Limiter struct {
	client *clientv3.Client
	prefix string
	cfg    Config
	log    *zap.Logger

	users sync.Map // user ID → *userState

	// hot are the users this gateway publishes demand for, or whose
	// demand others publish: the publisher looks at these only.
	hotMu sync.Mutex
	hot   map[string]*userState

	gateways atomic.Int64 // registered gateways, this one included; ≥ 1

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats counters
	wake  chan struct{} // a user turned hot: publish without waiting a tick
}

type counters struct {
	writes, published, withdrawn, allowed, refused, watchRestarts, rounds atomic.Int64
	registered                                                            atomic.Bool
}

// Stats counts what the limiter did.
type Stats struct {
	// Writes are etcd transactions sent to publish or withdraw demand;
	// Published and Withdrawn count the keys they wrote and deleted.
	Writes, Published, Withdrawn int64
	// Allowed and Refused count decisions.
	Allowed, Refused int64
	// Gateways is how many gateways share budgets, this one included.
	Gateways int64
	// Hot is how many users this gateway exchanges demand for.
	Hot int
	// Registered is whether this gateway holds its lease.
	Registered bool
}

// New starts a limiter on the etcd client, under prefix (which ends with
// "/"): it registers the gateway and follows the others at once. Close
// stops it; its registration then expires with its lease.
func New(client *clientv3.Client, prefix string, cfg Config) *Limiter {
	cfg.fill()
	l := &Limiter{
		client: client,
		prefix: prefix,
		cfg:    cfg,
		log:    cfg.Logger,
		hot:    map[string]*userState{},
		wake:   make(chan struct{}, 1),
	}
	l.gateways.Store(1)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.register()
	go l.follow()
	return l
}

// Close stops the limiter.
func (l *Limiter) Close() {
	l.cancel()
	l.wg.Wait()
}

// Gateway is this gateway's name among those sharing budgets.
func (l *Limiter) Gateway() string { return l.cfg.Gateway }

// Stats returns the limiter's counters.
func (l *Limiter) Stats() Stats {
	l.hotMu.Lock()
	hot := len(l.hot)
	l.hotMu.Unlock()
	return Stats{
		Writes:     l.stats.writes.Load(),
		Published:  l.stats.published.Load(),
		Withdrawn:  l.stats.withdrawn.Load(),
		Allowed:    l.stats.allowed.Load(),
		Refused:    l.stats.refused.Load(),
		Gateways:   l.gateways.Load(),
		Hot:        hot,
		Registered: l.stats.registered.Load(),
	}
}

// Decision is the answer to one request.
type Decision struct {
	Allowed bool
	// Requests and Window are the user's budget.
	Requests int64
	Window   time.Duration
	// Remaining is how many more requests this gateway admits for the
	// user in the current window.
	Remaining int64
	// Reset is the time left until the current window ends.
	Reset time.Duration
}

// Allow counts a request of the user, whose budget is requests per window,
// and says whether it is admitted. It never waits on etcd.
func (l *Limiter) Allow(user string, requests int64, window time.Duration) Decision {
	if requests < 1 || window <= 0 {
		return Decision{Requests: requests, Window: window}
	}
	now := l.cfg.now().UnixNano()
	u := l.lockedState(user)
	u.setLimit(requests, window, l)
	u.roll(now)
	u.offered++
	d := Decision{Requests: requests, Window: window, Reset: time.Duration(u.start + int64(window) - now)}
	if u.admitted < u.allowance {
		u.admitted++
		d.Allowed = true
	}
	d.Remaining = u.allowance - u.admitted
	// Half of the share wanted within one window: the budget may run out
	// here, so the others should know this gateway's demand.
	turnedHot := !u.hot && float64(u.offered)*2 >= u.share
	if turnedHot {
		u.hot = true
	}
	u.mu.Unlock()
	if d.Allowed {
		l.stats.allowed.Add(1)
	} else {
		l.stats.refused.Add(1)
	}
	if turnedHot {
		l.markHot(user, u)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return d
}

// lockedState is the user's state, made on first use, with its lock held.
func (l *Limiter) lockedState(user string) *userState {
	for {
		v, ok := l.users.Load(user)
		if !ok {
			// Half a request of carry rounds a share to the nearest whole
			// request from the start: with a budget smaller than the
			// gateways sharing it, a first request is not refused for the
			// rounding alone.
			v, _ = l.users.LoadOrStore(user, &userState{id: user, peers: map[string]float64{}, carry: 0.5})
		}
		u := v.(*userState)
		u.mu.Lock()
		if !u.dropped {
			return u
		}
		// The sweep dropped it after we found it: take the new one.
		u.mu.Unlock()
	}
}

func (l *Limiter) markHot(user string, u *userState) {
	l.hotMu.Lock()
	l.hot[user] = u
	l.hotMu.Unlock()
}

// userState is one user's budget on this gateway.
type userState struct {
	id string

	mu       sync.Mutex
	requests int64         // the budget; 0 until the first request says it
	window   time.Duration //
	start    int64         // unix nanoseconds the current window began
	offered  int64         // requests seen in the current window
	admitted int64         // requests admitted in the current window
	// lastOffered is what the window before the current one saw, when it
	// was the one just before; the demand estimate.
	lastOffered int64
	// share is this gateway's part of the budget per window; allowance is
	// the whole number of requests it admits in the current window, and
	// carry the fraction of a request left over from earlier windows, so
	// that over windows the admitted count averages the share.
	share     float64
	allowance int64
	carry     float64

	hot       bool               // this gateway publishes its demand
	published float64            // the demand published (or being), 0: none
	written   bool               // published is in etcd under the current lease
	dropped   bool               // the sweep removed this state from the map
	peers     map[string]float64 // other gateways' published demand
	idleSince int64              // unix nanoseconds since no traffic and no peers
}

// setLimit takes the budget a request carries; a changed budget takes
// effect at once. u.mu is held.
func (u *userState) setLimit(requests int64, window time.Duration, l *Limiter) {
	if u.requests == requests && u.window == window {
		return
	}
	u.requests, u.window = requests, window
	u.start, u.offered, u.admitted, u.lastOffered = 0, 0, 0, 0
	u.reshare(l)
}

// roll moves to the window holding now. u.mu is held.
func (u *userState) roll(now int64) {
	w := int64(u.window)
	if w <= 0 {
		return
	}
	start := now - now%w
	if start == u.start {
		return
	}
	if start == u.start+w {
		u.lastOffered = u.offered
	} else {
		u.lastOffered = 0
	}
	u.start, u.offered, u.admitted = start, 0, 0
	// The fraction not admitted carries over; what is left of an allowance
	// unused does not.
	total := u.share + u.carry
	u.allowance = int64(math.Floor(total))
	u.carry = total - float64(u.allowance)
}

// demand is the requests per window this gateway expects for the user.
// u.mu is held.
func (u *userState) demand() float64 {
	return float64(max(u.lastOffered, u.offered))
}

// reshare computes this gateway's share from the demands known. u.mu is
// held.
func (u *userState) reshare(l *Limiter) {
	if u.requests < 1 {
		return
	}
	limit := float64(u.requests)
	n := max(int(l.gateways.Load()), len(u.peers)+1)
	idle := idleDemand * limit / float64(n)
	var share float64
	if len(u.peers) == 0 && u.published == 0 {
		// Nobody exchanges demand for this user: an equal share each.
		share = limit / float64(n)
	} else {
		// Every gateway is counted with the demand it published, the
		// same figures every gateway sees, so that the shares add up to
		// the budget; gateways publishing none are nearly idle.
		demands := make([]float64, 0, n)
		self := u.published
		if self == 0 {
			self = idle
		}
		demands = append(demands, self)
		for _, d := range u.peers {
			demands = append(demands, d)
		}
		for len(demands) < n {
			demands = append(demands, idle)
		}
		share = shareOf(limit, demands, 0)
	}
	u.share = share
	// Within the current window the allowance follows the new share at
	// once; what was admitted stays admitted.
	u.allowance = int64(math.Floor(share + u.carry))
}

var errClosed = errors.New("limiter closed")
