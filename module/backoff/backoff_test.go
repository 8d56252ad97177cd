package backoff

import (
	"context"
	"testing"
	"time"
)

func TestStepsDoubleUpToTheMaximumAndReset(t *testing.T) {
	b := New(time.Millisecond, 4*time.Millisecond)
	ctx := context.Background()
	for _, want := range []time.Duration{2, 4, 4} {
		b.Wait(ctx)
		if b.cur != want*time.Millisecond {
			t.Fatalf("step %v, want %v", b.cur, want*time.Millisecond)
		}
	}
	b.Reset()
	if b.cur != time.Millisecond {
		t.Fatalf("after Reset the step is %v", b.cur)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	b := New(time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { b.Wait(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait outlived its context")
	}
}
