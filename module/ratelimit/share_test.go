package ratelimit

import (
	"math"
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
