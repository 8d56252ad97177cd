package ratelimit

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"math"
	"slices"
)

// headroom is how far above its observed demand a gateway's share goes
// while others want more: a light client whose rate wobbles is not cut at
// its average.
const headroom = 1.25

// idleDemand is the demand assumed of a registered gateway that publishes
// none for a user, as a fraction of an equal share: it keeps a little of
// the budget where a new client of the user may turn up, without taking
// much from the gateways that are busy.
const idleDemand = 0.05

// divide divides a budget of limit requests per window between gateways
// by their demand, max-min fair: no gateway gets more than headroom times
// its demand while another wants more, and what nobody wants is spread
// evenly. The shares always add up to limit. demands are per window, one
// per gateway; the result holds each gateway's share, in the same order.
func divide(limit float64, demands []float64) []float64 {
	n := len(demands)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(demands[a], demands[b]) })
	shares := make([]float64, n)
	left := limit
	for k, i := range order {
		fair := left / float64(n-k)
		shares[i] = min(max(demands[i], 0)*headroom, fair)
		left -= shares[i]
	}
	// Every gateway got all it wants (with headroom): spread the rest.
	for i := range shares {
		shares[i] += left / float64(n)
	}
	return shares
}

// apportion turns the shares of a budget of whole requests into whole
// requests, the same way on every gateway: each gets the whole part of its
// share, and the requests left over go to the largest fractions, ties
// broken by a hash of the window and the gateway, so that over windows
// they go round. The parts add up to the budget. It returns the part of
// gateway self (one of ids, in the order of shares).
func apportion(budget int64, shares []float64, ids []string, self string, window int64) int64 {
	type part struct {
		id    string
		whole int64
		frac  float64
		tie   uint64
	}
	parts := make([]part, len(shares))
	var given int64
	for i, s := range shares {
		w := int64(math.Floor(s + 1e-9))
		parts[i] = part{ids[i], w, s - float64(w), tieBreak(window, ids[i])}
		given += w
	}
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(parts[b].frac, parts[a].frac); c != 0 && math.Abs(parts[a].frac-parts[b].frac) > 1e-9 {
			return c
		}
		return cmp.Compare(parts[a].tie, parts[b].tie)
	})
	for _, i := range order[:min(max(budget-given, 0), int64(len(order)))] {
		parts[i].whole++
	}
	for _, p := range parts {
		if p.id == self {
			return p.whole
		}
	}
	return 0
}

// tieBreak orders gateways for a window, differently from one window to
// the next.
func tieBreak(window int64, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(window))
	h.Write(b[:])
	h.Write([]byte(id))
	return h.Sum64()
}
