package report

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/token"
)

func testReport(n byte) Report {
	return Report{Reporter: "192.0.2.1", Digests: []token.Hash{{n}}}
}

// TestSubmitDoesNotWait: Submit returns while the worker is still busy
// with earlier reports, so an answer never waits on the revocation (and
// cannot take longer when the tokens were live).
func TestSubmitDoesNotWait(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var done []byte
	r := NewRevoker(func(ctx context.Context, rep Report) {
		<-release
		mu.Lock()
		done = append(done, rep.Digests[0][0])
		mu.Unlock()
	})
	for i := byte(1); i <= 3; i++ {
		if err := r.Submit(context.Background(), testReport(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	r.Close()
	if string(done) != "\x01\x02\x03" {
		t.Fatalf("worker handled %v, want the three reports in order", done)
	}
}

// TestSubmitBusyAndClosed: a full queue refuses after its wait; a closed
// revoker refuses at once; Close finishes what was queued.
func TestSubmitBusyAndClosed(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	handled := 0
	r := NewRevoker(func(ctx context.Context, rep Report) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		handled++
	})
	r.submitWait = 10 * time.Millisecond
	if err := r.Submit(context.Background(), testReport(0)); err != nil {
		t.Fatal(err)
	}
	<-started // the worker holds the first; the queue is empty
	for i := 0; i < QueueLen; i++ {
		if err := r.Submit(context.Background(), testReport(1)); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if err := r.Submit(context.Background(), testReport(2)); !errors.Is(err, ErrBusy) {
		t.Fatalf("full queue: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Submit(ctx, testReport(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("full queue, cancelled request: %v", err)
	}
	close(release)
	r.Close()
	if handled != 1+QueueLen {
		t.Fatalf("handled %d reports, want %d", handled, 1+QueueLen)
	}
	if err := r.Submit(context.Background(), testReport(3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}
