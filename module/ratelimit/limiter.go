package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
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
	// Announce is the value of this gateway's registration: what the
	// others may need to know of it (the store's schema it writes).
	Announce string

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

	// registry is the gateways registered, sorted, this one included.
	registry atomic.Pointer[[]string]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats counters
	wake  chan struct{} // a user turned hot: publish without waiting a tick
}

type counters struct {
	writes, published, withdrawn, allowed, refused, rounds atomic.Int64
	registered                                             atomic.Bool
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
	l.registry.Store(&[]string{cfg.Gateway})
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
		Gateways:   int64(len(*l.registry.Load())),
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
	u.setLimit(requests, window, now, l)
	u.roll(now, l)
	u.offered++
	d := Decision{Requests: requests, Window: window, Reset: time.Duration(u.end - now)}
	if u.admitted < u.allowance {
		u.admitted++
		d.Allowed = true
	}
	d.Remaining = max(u.allowance-u.admitted, 0)
	// Half of the share wanted within one window: the budget may run out
	// here, so the others should know this gateway's demand.
	turnedHot := !u.hot && u.offered*2 >= max(u.initial, 1)
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
			v, _ = l.users.LoadOrStore(user, &userState{id: user, peers: map[string]peer{}})
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

// peer is what another gateway published for a user: in the window that
// began at start it had admitted admitted requests, and it expects demand
// per window. A gateway that left publishes its count with no demand, so
// that what it admitted still counts until the window ends.
type peer struct {
	start    int64
	admitted int64
	demand   float64
}

// userState is one user's budget on this gateway.
type userState struct {
	id string

	mu       sync.Mutex
	requests int64         // the budget; 0 until the first request says it
	window   time.Duration //
	start    int64         // unix nanoseconds the current window began
	end      int64         // and ends
	offered  int64         // requests seen in the current window
	admitted int64         // requests admitted in the current window
	// lastOffered is what the window before the current one saw, when it
	// was the one just before; the demand estimate.
	lastOffered int64
	// allowance is how many requests this gateway admits in the current
	// window (what it admitted included); initial is what it was when the
	// window began.
	allowance, initial int64

	hot         bool    // this gateway publishes its demand
	published   float64 // the demand published (or being), 0: none
	pubAdmitted int64   // the count published with it
	pubStart    int64   // in the window that began then
	written     bool    // published is in etcd under the current lease
	dropped     bool    // the sweep removed this state from the map
	peers       map[string]peer
	idleSince   int64 // unix nanoseconds since no traffic and no peers
}

// setLimit takes the budget a request carries; a changed budget takes
// effect at once. What was admitted in the current window stays counted,
// and a new window length never ends the current window sooner: changing
// a limit, even lowering it, never hands out a fresh budget. u.mu is held.
func (u *userState) setLimit(requests int64, window time.Duration, now int64, l *Limiter) {
	if u.requests == requests && u.window == window {
		return
	}
	if u.window != window {
		w := int64(window)
		start := now - now%w
		u.start, u.end = start, max(u.end, start+w)
	}
	u.requests, u.window = requests, window
	u.reshare(l)
	u.initial = u.allowance
}

// roll moves to the window holding now. u.mu is held.
func (u *userState) roll(now int64, l *Limiter) {
	if now < u.end || u.window <= 0 {
		return // the same window, or no budget known yet
	}
	w := int64(u.window)
	start := now - now%w
	if start == u.end {
		u.lastOffered = u.offered
	} else {
		u.lastOffered = 0
	}
	u.start, u.end, u.offered, u.admitted = start, start+w, 0, 0
	u.reshare(l)
	u.initial = u.allowance
}

// demand is the requests per window this gateway expects for the user.
// u.mu is held.
func (u *userState) demand() float64 {
	return float64(max(u.lastOffered, u.offered))
}

// reshare sets this gateway's allowance for the current window from what
// it knows of the others. u.mu is held.
//
// While no gateway publishes demand for the user, each gateway admits an
// equal share of the budget. Once demand is exchanged, the window's budget
// is divided by demand (divide); what is left of it — less what every
// gateway has said it admitted in this window — goes to the gateways by
// what they still need of their part, in whole requests by the same rule
// on every gateway (apportion), added to what this gateway has admitted:
// budget moved between gateways within a window is only budget not yet
// spent.
func (u *userState) reshare(l *Limiter) {
	if u.requests < 1 || u.end == 0 {
		return
	}
	self := l.cfg.Gateway
	ids := l.participants(u)
	n := len(ids)
	idle := idleDemand * float64(u.requests) / float64(n)
	if len(u.peers) == 0 && u.published == 0 {
		// Nobody exchanges demand for this user: an equal share each.
		equal := make([]float64, n)
		for i := range equal {
			equal[i] = float64(u.requests) / float64(n)
		}
		u.allowance = apportion(u.requests, equal, ids, self, u.start)
		return
	}
	demands := make([]float64, n)
	spent := make([]float64, n) // admitted in this window, as each said
	for i, id := range ids {
		d := idle
		if id == self {
			if u.published > 0 {
				d = u.published
			}
			spent[i] = float64(u.admitted)
		} else if p, ok := u.peers[id]; ok {
			if p.demand > 0 {
				d = p.demand
			}
			if p.start == u.start {
				spent[i] = float64(p.admitted)
			}
		}
		demands[i] = d
	}
	left := u.requests - u.admitted
	// Every count of this window is spent, those of gateways that left
	// included.
	for _, p := range u.peers {
		if p.start == u.start {
			left -= p.admitted
		}
	}
	left = max(left, 0)
	// What each gateway would get of the whole window's budget, less what
	// it has spent already, is what it still needs; what is left of the
	// budget goes by that need (all of it, when nobody spent more than
	// its part; less, in proportion, when some did before the division
	// changed).
	need := divide(float64(u.requests), demands)
	var total float64
	for i := range need {
		need[i] = max(need[i]-spent[i], 0)
		total += need[i]
	}
	give := make([]float64, n)
	for i := range give {
		switch {
		case total > 0:
			give[i] = float64(left) * need[i] / total
		default:
			give[i] = float64(left) / float64(n)
		}
	}
	u.allowance = u.admitted + apportion(left, give, ids, self, u.start)
}

// participants are the gateways a user's budget is divided between, in
// one order every gateway agrees on: those registered and those
// publishing demand for the user, this one always.
func (l *Limiter) participants(u *userState) []string {
	reg := l.registry.Load()
	ids := make([]string, 0, len(*reg)+len(u.peers)+1)
	ids = append(ids, *reg...)
	ids = append(ids, l.cfg.Gateway)
	for id, p := range u.peers {
		if p.demand > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Why the loops of a limiter end.
var (
	errClosed      = errors.New("limiter closed")
	errLeaseLost   = errors.New("lease lost")
	errWatchClosed = errors.New("watch closed")
)
