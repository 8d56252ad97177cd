package verify

import (
	"fmt"
	"time"
)

// Readiness is whether this instance can judge tokens as it should: what a
// load balancer or a Kubernetes readiness probe asks.
type Readiness struct {
	// Ready: etcd has answered since the start, the watch has been in sync
	// within max_stale (so cached identities are honoured and changes
	// arrive), the filter of issued tokens is complete, and the first
	// warming of the cache has ended (or taken warmReadyBound).
	Ready bool
	// Reason says what is missing when not Ready.
	Reason string
	// StoreReached: etcd has answered at least once since the start.
	// StoreReachable: etcd has answered within the last few heartbeats.
	StoreReached, StoreReachable bool
	// SyncAge is how long ago the watch was last known in sync with etcd
	// (zero before the first time); MaxStale how long that may last.
	SyncAge, MaxStale time.Duration
	// FilterComplete: the filter of issued tokens holds every token.
	FilterComplete bool
	// Warming: the cache is being warmed after the start (warm.go);
	// readiness waits for it, at most warmReadyBound.
	Warming bool
}

// Readiness reports whether the instance is ready. A short outage does
// not make it unready: while etcd is unreachable the gateway honours cached
// identities until max_stale after the last sync, and every gateway of a
// cluster sees the same outage, so taking them all out of a load balancer
// at once would turn a blip into a full outage. Past max_stale it is not
// ready, as it then answers 503.
func (v *Verifier) Readiness() Readiness {
	r := Readiness{
		StoreReached:   v.changes.newsAt.Load() != 0,
		StoreReachable: v.Reachable(),
		SyncAge:        v.SyncAge(),
		MaxStale:       v.cfg.MaxStale,
		FilterComplete: v.filter.state().complete,
		Warming:        v.warmingFirst(),
	}
	switch {
	case !r.StoreReached:
		r.Reason = "etcd has not answered yet"
	case r.SyncAge > r.MaxStale:
		r.Reason = fmt.Sprintf("etcd has not been in sync for %s, longer than max_stale %s",
			r.SyncAge.Round(time.Millisecond), r.MaxStale)
	case !r.FilterComplete:
		r.Reason = "the filter of issued tokens is being built"
	case r.Warming:
		r.Reason = fmt.Sprintf("the cache is being warmed with recently used tokens (for at most %s)", warmReadyBound)
	default:
		r.Ready = true
	}
	return r
}
