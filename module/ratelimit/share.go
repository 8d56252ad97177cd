package ratelimit

import (
	"cmp"
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

// shareOf divides a budget of limit requests per window between gateways
// by their demand, max-min fair: no gateway gets more than headroom times
// its demand while another wants more, and what nobody wants is spread
// evenly. The shares always add up to limit. demands are per window, one
// per gateway; the result is the share of demands[self].
func shareOf(limit float64, demands []float64, self int) float64 {
	n := len(demands)
	if n == 0 {
		return limit
	}
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
	return shares[self] + left/float64(n)
}
