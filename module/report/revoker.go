package report

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tokengate/tokengate/module/token"
)

// Report is one accepted report: who sent it and the digests of its
// well-formed credentials (never the credentials themselves).
type Report struct {
	// Reporter is the client IP the report came from.
	Reporter string
	Digests  []token.Hash
}

// RevokeFunc revokes the live tokens among a report's digests, and records
// and logs what it did. It runs on the Revoker's worker.
type RevokeFunc func(ctx context.Context, rep Report)

// Bounds of the Revoker.
const (
	// QueueLen is how many reports may wait for the worker (each at most
	// 1000 digests of 32 bytes).
	QueueLen = 64
	// submitWait is how long Submit waits for room in a full queue.
	submitWait = 2 * time.Second
	// reportTimeout bounds the work on one report.
	reportTimeout = 30 * time.Second
	// drainTimeout bounds how long Close spends on reports still queued.
	drainTimeout = 10 * time.Second
)

// Errors of Submit.
var (
	ErrBusy   = errors.New("too many reports are waiting; try again shortly")
	ErrClosed = errors.New("reports are no longer taken here")
)

// Revoker hands reports to one worker goroutine, through a bounded queue,
// so that the caller's answer never waits on what the report holds.
type Revoker struct {
	revoke     RevokeFunc
	submitWait time.Duration
	queue      chan Report
	stopping   chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu     sync.RWMutex // held to send on queue; Close takes it to stop sending
	closed bool
}

// NewRevoker starts the worker; Close stops it.
func NewRevoker(revoke RevokeFunc) *Revoker {
	r := &Revoker{revoke: revoke, submitWait: submitWait, queue: make(chan Report, QueueLen), stopping: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.work()
	return r
}

// Submit queues a report. It waits (briefly) only when the queue is full,
// which depends on the load, never on the report: ErrBusy if room does not
// come, ErrClosed once Close has begun.
func (r *Revoker) Submit(ctx context.Context, rep Report) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	select {
	case r.queue <- rep:
		return nil
	default:
	}
	wait := time.NewTimer(r.submitWait)
	defer wait.Stop()
	select {
	case r.queue <- rep:
		return nil
	case <-wait.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Revoker) work() {
	defer r.wg.Done()
	for {
		select {
		case rep := <-r.queue:
			r.handle(rep)
		case <-r.stopping:
			// Closed: nothing more can be queued; finish what was.
			for {
				select {
				case rep := <-r.queue:
					r.handle(rep)
				default:
					return
				}
			}
		}
	}
}

func (r *Revoker) handle(rep Report) {
	ctx, cancel := context.WithTimeout(r.ctx, reportTimeout)
	defer cancel()
	r.revoke(ctx, rep)
}

// Close stops taking reports, lets the worker finish those queued (for at
// most drainTimeout, then cuts their work short) and waits for it.
func (r *Revoker) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stopping)
	cut := time.AfterFunc(drainTimeout, r.cancel)
	r.wg.Wait()
	cut.Stop()
	r.cancel()
}
