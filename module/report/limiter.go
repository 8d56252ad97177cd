package report

import (
	"container/list"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Limit is how many reports one client may send in a window.
type Limit struct {
	Requests int
	Window   time.Duration
}

// DefaultLimit is the report_limit when none is configured: 60/1h.
var DefaultLimit = Limit{Requests: 60, Window: time.Hour}

// Bounds of a Limit.
const (
	MaxLimitRequests = 1_000_000
	MinLimitWindow   = time.Second
	MaxLimitWindow   = 7 * 24 * time.Hour
)

// ParseLimit reads a limit written "<requests>/<window>", such as 60/1h or
// 1000/1d: requests from 1 to 1000000, window from 1s to 7d.
func ParseLimit(s string) (Limit, error) {
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%q is not <requests>/<window>, such as 60/1h", s)
	}
	requests, err := strconv.Atoi(n)
	if err != nil || requests < 1 || requests > MaxLimitRequests {
		return Limit{}, fmt.Errorf("%q: requests must be a number from 1 to %d", s, MaxLimitRequests)
	}
	window, err := caddy.ParseDuration(w)
	if err != nil || window < MinLimitWindow || window > MaxLimitWindow {
		return Limit{}, fmt.Errorf("%q: window must be a duration from 1s to 7d, such as 1h", s)
	}
	return Limit{Requests: requests, Window: window}, nil
}

// String writes the limit as ParseLimit reads it, such as 60/1h.
func (l Limit) String() string {
	w := l.Window.String()
	if strings.HasSuffix(w, "m0s") {
		w = strings.TrimSuffix(w, "0s")
	}
	if strings.HasSuffix(w, "h0m") {
		w = strings.TrimSuffix(w, "0m")
	}
	return strconv.Itoa(l.Requests) + "/" + w
}

// MaxClients bounds the clients a Limiter remembers (about 200 bytes
// each): when it is full, the client seen least recently is forgotten. An
// attacker who cycles through addresses gains nothing from this that the
// fresh addresses did not give it already.
const MaxClients = 1 << 16

// Limiter holds each client to a Limit, in memory: Requests at once, then
// one every Window/Requests (a generic cell rate algorithm, so one time
// per client is all it keeps). Clients are IP addresses; IPv6 addresses
// count per /64, the block one subscriber usually holds.
type Limiter struct {
	limit    Limit
	interval time.Duration // Window / Requests: how fast the budget refills
	max      int
	now      func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *clientState
	recency *list.List               // least recently seen first
}

type clientState struct {
	key string
	// due is the theoretical arrival time: the budget is full again once
	// it has passed, and a request is refused while it lies more than a
	// window ahead.
	due time.Time
}

// NewLimiter returns a limiter holding every client to l.
func NewLimiter(l Limit) *Limiter {
	return &Limiter{limit: l, interval: l.Window / time.Duration(l.Requests), max: MaxClients, now: time.Now,
		clients: map[string]*list.Element{}, recency: list.New()}
}

// Limit is the limit the limiter enforces.
func (l *Limiter) Limit() Limit { return l.limit }

// Allow counts a request of client (an IP address) and reports whether it
// is within the limit; when it is not, retryAfter says when the next one
// will be.
func (l *Limiter) Allow(client string) (ok bool, retryAfter time.Duration) {
	key := clientKey(client)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.clients[key]
	due := now
	if el != nil {
		l.recency.MoveToBack(el)
		if st := el.Value.(*clientState); st.due.After(now) {
			due = st.due
		}
	}
	next := due.Add(l.interval)
	if wait := next.Sub(now) - l.limit.Window; wait > 0 {
		return false, wait
	}
	if el == nil {
		if len(l.clients) >= l.max {
			oldest := l.recency.Front()
			delete(l.clients, oldest.Value.(*clientState).key)
			l.recency.Remove(oldest)
		}
		el = l.recency.PushBack(&clientState{key: key})
		l.clients[key] = el
	}
	el.Value.(*clientState).due = next
	return true, 0
}

// Clients is how many clients the limiter remembers.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientKey is what a client counts as: an IPv4 address, the /64 of an
// IPv6 address, or (what is not an address) the text itself, cut short.
func clientKey(client string) string {
	addr, err := netip.ParseAddr(client)
	if err != nil {
		if len(client) > 64 {
			client = client[:64]
		}
		return client
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
