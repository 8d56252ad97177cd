package reliability

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestPartitionedMemberNoStaleAdmission cuts gateway A's only etcd member,
// m0, off from the cluster's leader while the others revoke a token. Past
// max_stale, A must not admit the token on the word of m0, which has not
// seen the revocation: not while m0 is stopped, not when it comes back
// behind the others, and not while it runs cut off from the rest.
func TestPartitionedMemberNoStaleAdmission(t *testing.T) {
	const maxStale = time.Second
	f := newFixture(t, 1, 2)
	// A long cache_ttl, so that only max_stale stands between a stale
	// member and an admission.
	a := f.gateway(t, "A", GatewayConfig{MaxStale: maxStale, CacheTTL: time.Minute}, 0)

	for _, tc := range []struct {
		name string
		// leader is the member to lead when m0 stops.
		leader int
		// isolate runs after the revocation, before m0 resumes; heal
		// undoes it.
		isolate, heal func(f *fixture)
	}{
		// Back, m0 answers the progress requests A queued while it was
		// stopped at once, with its own revision from before the
		// revocation. Unless A takes only a quorum's word for sync, it
		// trusts its cache again: for a moment for any request (until m0
		// applies what it missed), and for requests waiting on a read m0
		// cannot answer (a leader that lost its role, or a member cut
		// off from the rest) when that read fails.
		{name: "follower stopped, then resumed", leader: 1},
		{name: "leader stopped, then resumed", leader: 0},
		{
			name: "follower resumed while cut off from the rest", leader: 1,
			isolate: func(f *fixture) { f.cluster.Pause(1); f.cluster.Pause(2) },
			heal:    func(f *fixture) { f.cluster.Resume(1); f.cluster.Resume(2) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.cluster.MakeLeader(tc.leader, 10*time.Second)
			creds := f.users(t, 2)
			doomed, kept := creds[0], creds[1]
			f.admits(t, a, doomed)
			f.admits(t, a, kept)

			f.cluster.Pause(0)
			paused := time.Now()
			f.revoke(t, doomed, 10*time.Second)
			// From here on, A has had no news from the cluster for
			// max_stale: it may not admit the revoked token any more.
			staleFrom := paused.Add(maxStale + 250*time.Millisecond)
			for time.Now().Before(staleFrom) {
				time.Sleep(10 * time.Millisecond)
			}

			var (
				mu    sync.Mutex
				wrong []Result
				stop  = make(chan struct{})
				wg    sync.WaitGroup
			)
			// Ask for the revoked token throughout, several requests at
			// a time, as clients would.
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						r := a.Do(context.Background(), f.hc, "partition", doomed.secret)
						if r.Status == http.StatusOK {
							mu.Lock()
							wrong = append(wrong, r)
							mu.Unlock()
						}
						time.Sleep(5 * time.Millisecond)
					}
				})
			}

			if tc.isolate != nil {
				tc.isolate(f)
			}
			f.cluster.Resume(0)
			resumed := time.Now()
			// m0 is back: caught up with the leader within moments, or,
			// cut off from the rest, alone and behind.
			for time.Since(resumed) < 3*time.Second {
				time.Sleep(10 * time.Millisecond)
			}
			if tc.heal != nil {
				tc.heal(f)
			}
			f.cluster.WaitHealthy(20 * time.Second)
			if seen, ok := f.waitUntil(a, doomed.secret, maxCatchUp, refused); !ok {
				t.Errorf("A answers %s after the partition healed", seen[len(seen)-1])
			}
			close(stop)
			wg.Wait()

			for i, r := range wrong {
				if i < 5 {
					t.Errorf("A admitted the revoked token %s after m0 resumed, %s after m0 was stopped (max_stale %s)",
						r.Start.Sub(resumed), r.Start.Sub(paused), maxStale)
				}
			}
			if len(wrong) > 0 {
				t.Errorf("A admitted the revoked token %d times in all, from %s to %s after m0 resumed",
					len(wrong), wrong[0].Start.Sub(resumed), wrong[len(wrong)-1].Start.Sub(resumed))
			}
			f.admits(t, a, kept)
		})
	}
}
