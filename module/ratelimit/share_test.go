package ratelimit

import (
	"math"
	"slices"
	"testing"
)

func TestDivide(t *testing.T) {
	for _, c := range []struct {
		name    string
		limit   float64
		demands []float64
		want    []float64
	}{
		{"alone", 100, []float64{1000}, []float64{100}},
		{"nobody wants any", 100, []float64{0, 0}, []float64{50, 50}},
		{"skewed: the light gateway keeps what it needs", 100, []float64{2000, 10}, []float64{87.5, 12.5}},
		{"both want more than half", 100, []float64{300, 200}, []float64{50, 50}},
		{"nobody wants it all: the rest is spread", 100, []float64{20, 20}, []float64{50, 50}},
		{"three, one idle", 90, []float64{1000, 1000, 0}, []float64{45, 45, 0}},
		{"negative demand is none", 10, []float64{-5, 100}, []float64{0, 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sum float64
			for i := range c.demands {
				got := divide(c.limit, c.demands)[i]
				if math.Abs(got-c.want[i]) > 1e-9 {
					t.Errorf("share of gateway %d = %v, want %v", i, got, c.want[i])
				}
				sum += got
			}
			if math.Abs(sum-c.limit) > 1e-9 {
				t.Errorf("shares add up to %v, want %v", sum, c.limit)
			}
		})
	}
}

// TestApportion: every gateway computes the same whole parts from the same
// shares: they add up to the budget, each is its share rounded down or up,
// the left-over requests go to the largest fractions, and ties go round
// from one window to the next rather than to the same gateway.
func TestApportion(t *testing.T) {
	ids := []string{"gw-a", "gw-b", "gw-c"}
	parts := func(budget int64, shares []float64, window int64) []int64 {
		out := make([]int64, len(ids))
		for i, id := range ids {
			out[i] = apportion(budget, shares, ids, id, window)
		}
		return out
	}
	for _, c := range []struct {
		name   string
		budget int64
		shares []float64
		want   []int64 // nil: only the invariants
	}{
		{"whole shares", 90, []float64{30, 30, 30}, []int64{30, 30, 30}},
		{"largest fraction first", 10, []float64{2.2, 3.7, 4.1}, []int64{2, 4, 4}},
		{"two left over", 10, []float64{3.5, 3.4, 3.1}, []int64{4, 3, 3}},
		{"float noise below a whole", 9, []float64{2.9999999999, 3.0000000001, 3}, []int64{3, 3, 3}},
		{"one request, three equal shares", 1, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, nil},
		{"a zero share", 7, []float64{0, 3.5, 3.5}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := parts(c.budget, c.shares, 42)
			var sum int64
			for i, p := range got {
				sum += p
				if float64(p) < math.Floor(c.shares[i]+1e-9) || float64(p) > math.Ceil(c.shares[i]-1e-9) {
					t.Errorf("gateway %d: %d for a share of %v", i, p, c.shares[i])
				}
			}
			if sum != c.budget {
				t.Errorf("parts %v add up to %d, want %d", got, sum, c.budget)
			}
			if c.want != nil && !slices.Equal(got, c.want) {
				t.Errorf("parts %v, want %v", got, c.want)
			}
		})
	}
	// An equal tie: the one request goes to some gateway in each window,
	// and over windows to each of them.
	third := []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
	won := map[int]int{}
	for window := range int64(300) {
		got := parts(1, third, window)
		for i, p := range got {
			if p == 1 {
				won[i]++
			}
		}
	}
	for i := range ids {
		if won[i] < 50 {
			t.Errorf("over 300 windows gateway %d got the tied request %d times", i, won[i])
		}
	}
	// A gateway not among ids gets nothing.
	if p := apportion(10, []float64{5, 5}, []string{"a", "b"}, "c", 1); p != 0 {
		t.Errorf("a stranger's part: %d", p)
	}
}
