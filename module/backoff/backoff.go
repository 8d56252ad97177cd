// Package backoff spaces out attempts to reach etcd again: exponential,
// with full jitter, stopped by a context. The watch of the identity cache
// and the webhook deliverer use it, so a broken connection is never retried
// in a bare loop.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is exponential with full jitter: each Wait lasts a random time
// up to the current step, and the step doubles up to its maximum. It is
// not safe for concurrent use; each retrying goroutine owns one.
type Backoff struct {
	min, max, cur time.Duration
}

// New returns a Backoff whose steps go from lo to at most hi.
func New(lo, hi time.Duration) *Backoff { return &Backoff{min: lo, max: hi, cur: lo} }

// Reset starts again from the shortest step, after a success.
func (b *Backoff) Reset() { b.cur = b.min }

// Wait sleeps for the next step, or until ctx ends.
func (b *Backoff) Wait(ctx context.Context) {
	d := time.Duration(rand.Int64N(int64(b.cur)) + 1)
	b.cur = min(b.cur*2, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
