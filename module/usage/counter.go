package usage

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Admitted is the outcome of a request the gateway let through; any other
// outcome is the code of the refusal that answered it.
const Admitted = "admitted"

// OtherRoute stands for the routes of a user past MaxCellsPerUser: a
// client sending many distinct paths cannot grow the counts without bound.
const OtherRoute = "(other)"

// MaxCellsPerUser bounds the distinct cells one user holds in a gateway's
// memory between two harvests; further requests count under OtherRoute.
const MaxCellsPerUser = 256

// maxRouteLen bounds a route's length.
const maxRouteLen = 96

// Cell is what one count is kept for: an hour, and the request's account,
// method, route, the policy statement that admitted it, and outcome.
type Cell struct {
	Hour      int64 // hours since the Unix epoch, UTC
	Account   string
	Method    string
	Route     string
	Statement string // "<policy id>#<index>"; empty unless a policy admitted the request
	Outcome   string
}

// Counter counts requests per user and cell, in memory. Its zero value is
// not usable: use NewCounter.
type Counter struct {
	seed   maphash.Seed
	shards [16]shard
}

type shard struct {
	mu    sync.RWMutex
	users map[userKey]*userCells
}

type userKey struct{ org, user string }

type userCells struct {
	mu    sync.RWMutex
	cells map[Cell]*atomic.Int64
	// gone: Harvest removed these cells from the counter; a count that
	// found them before starts over rather than count into them.
	gone bool
}

// NewCounter returns an empty counter.
func NewCounter() *Counter {
	c := &Counter{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].users = make(map[userKey]*userCells)
	}
	return c
}

// Count adds one request of user in org. Once a cell exists it costs two
// read-locked map lookups and an atomic add, and allocates nothing. The
// add is made under the user's read lock, so Harvest, which takes it to
// read and forget cells, never loses a count.
func (c *Counter) Count(org, user string, at time.Time, cell Cell) {
	cell.Hour = at.Unix() / 3600
	sh := &c.shards[maphash.String(c.seed, user)%uint64(len(c.shards))]
	key := userKey{org, user}
	for {
		sh.mu.RLock()
		u := sh.users[key]
		sh.mu.RUnlock()
		if u == nil {
			u = sh.add(key)
		}
		u.mu.RLock()
		n := u.cells[cell]
		if n != nil && !u.gone {
			n.Add(1)
			u.mu.RUnlock()
			return
		}
		u.mu.RUnlock()
		if u.add(cell) {
			return
		}
	}
}

func (sh *shard) add(key userKey) *userCells {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users[key]; u != nil {
		return u
	}
	u := &userCells{cells: make(map[Cell]*atomic.Int64)}
	sh.users[userKey{strings.Clone(key.org), strings.Clone(key.user)}] = u
	return u
}

// add counts one request in cell, making the cell if it is new; false
// when Harvest removed these cells meanwhile (the caller starts over).
func (u *userCells) add(cell Cell) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gone {
		return false
	}
	n := u.cells[cell]
	if n == nil && len(u.cells) >= MaxCellsPerUser {
		cell.Route, cell.Statement = OtherRoute, ""
		n = u.cells[cell]
	}
	if n == nil {
		// The strings may be slices of the request; the map outlives
		// it. A route is kept printable: it reaches terminals and pages.
		cell.Account = strings.Clone(cell.Account)
		cell.Route = Printable(cell.Route)
		if n = u.cells[cell]; n == nil {
			n = new(atomic.Int64)
			u.cells[cell] = n
		}
	}
	n.Add(1)
	return true
}

// Counted are one user's counts taken by Harvest.
type Counted struct {
	Org, User string
	Cells     map[Cell]int64
}

// Harvest takes the counts made since the last harvest, leaving zeros, and
// forgets the cells of hours before now's that counted nothing since.
func (c *Counter) Harvest(now time.Time) []Counted {
	hour := now.Unix() / 3600
	var out []Counted
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for key, u := range sh.users {
			got := Counted{Org: key.org, User: key.user}
			u.mu.Lock()
			for cell, n := range u.cells {
				if v := n.Swap(0); v > 0 {
					if got.Cells == nil {
						got.Cells = make(map[Cell]int64)
					}
					got.Cells[cell] = v
				} else if cell.Hour < hour {
					delete(u.cells, cell)
				}
			}
			if len(u.cells) == 0 {
				u.gone = true
				delete(sh.users, key)
			}
			u.mu.Unlock()
			if got.Cells != nil {
				out = append(out, got)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Route is the label a request path is counted under: its first two
// segments ("/v1/clusters/7/nodes" is "/v1/clusters"), at most 96 bytes.
// It is a slice of path: nothing is allocated.
func Route(path string) string {
	if path == "" || path[0] != '/' {
		return "/"
	}
	end := len(path)
	seen := 0
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			seen++
			if seen == 2 {
				end = i
				break
			}
		}
	}
	if end > maxRouteLen {
		end = maxRouteLen
	}
	return path[:end]
}

// Method is the label a request method is counted under: the method for
// the common ones, "OTHER" for the rest, so a client cannot make up labels.
func Method(m string) string {
	for _, k := range methods {
		if m == k {
			return k
		}
	}
	return "OTHER"
}

var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Printable returns s with every byte that is not valid UTF-8 and every
// rune that is not printable (control characters, bidirectional and other
// format characters) replaced by "?", always as a copy of its own: text a
// client chose, shown to admins in terminals and pages.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
