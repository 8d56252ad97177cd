package measure

import (
	"testing"
	"time"
)

func TestRound(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{0, 0},
		{87 * time.Microsecond, 87 * time.Microsecond},
		{100 * time.Microsecond, 100 * time.Microsecond},
		{1234567 * time.Nanosecond, 1230 * time.Microsecond},
		{10 * time.Millisecond, 10 * time.Millisecond},
		{12345678 * time.Nanosecond, 12300 * time.Microsecond},
	} {
		t.Run(c.in.String(), func(t *testing.T) {
			if got := Round(c.in); got != c.want {
				t.Fatalf("Round(%s) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	sorted := make([]time.Duration, 200)
	for i := range sorted {
		sorted[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", sorted[:1], 99, time.Millisecond},
		{"median", sorted, 50, 101 * time.Millisecond},
		{"p99", sorted, 99, 199 * time.Millisecond},
		{"max", sorted, 100, 200 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.sorted, c.p); got != c.want {
				t.Fatalf("Percentile(%d) = %s, want %s", c.p, got, c.want)
			}
		})
	}
}
