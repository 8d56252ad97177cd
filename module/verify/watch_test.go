package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/store"
)

// TestStoreWentBack: etcd restored from a snapshot without a bumped
// revision (as etcd 3.4 restores) under a running gateway: the revisions
// go back below what the watch applied. The gateway sees it, forgets
// every verdict and starts over: a token revoked after the restore is
// refused, one issued after it is admitted.
func TestStoreWentBack(t *testing.T) {
	e := newEnv(t, Config{CacheTTL: time.Hour, MaxStale: 5 * time.Second})
	u, secret := e.user(nil)
	e.synced()
	e.mustVerify(secret)

	snap := filepath.Join(t.TempDir(), "backup.snapshot")
	rc, err := e.writer.Client().Snapshot(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	f.Close()
	for range 30 { // the store moves well past the snapshot
		e.user(nil)
	}
	// A change made through the gateway's own store, as its admin API
	// makes them: its read-your-writes waits for that revision.
	if _, err := e.reader.UpdateUser(e.ctx(), e.org, u.ID, func(u *store.User) error { u.Name = "late"; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	e.synced()

	e.srv.Stop()
	if _, _, err := etcdconn.RestoreEmbedded(etcdconn.RestoreConfig{Snapshot: snap, Dir: e.srv.Dir(), Replace: true, KeepRevision: true}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	e.srv.Restart()
	tokens, err := e.writer.ListTokens(e.ctx(), e.org, u.ID)
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens after the restore: %v %v", tokens, err)
	}
	_, fresh := e.user(nil)
	deadline := time.Now().Add(20 * time.Second)
	for e.v.changes.epoch.Load() == 0 || e.v.changes.applied.Load() == 0 { // seen, and started over
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not see the revision go back")
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, with a deadline
	}
	if err := e.reader.RevokeToken(e.ctx(), e.org, u.ID, tokens[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	// Read-your-writes holds at once, not after the revisions before the
	// restore come back.
	ctx, cancel := context.WithTimeout(e.ctx(), time.Second)
	defer cancel()
	if err := e.v.WaitForRevision(ctx, e.reader.LastCommit()); err != nil {
		t.Fatalf("waiting for the revocation made here: %v", err)
	}
	if _, err := e.v.Verify(e.ctx(), secret); !errors.Is(err, ErrUnknown) {
		t.Fatalf("the token revoked here, at once: %v", err)
	}

	deadline = time.Now().Add(20 * time.Second)
	for {
		_, revoked := e.v.Verify(e.ctx(), secret)
		_, issued := e.v.Verify(e.ctx(), fresh)
		if errors.Is(revoked, ErrUnknown) && issued == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restore: revoked token %v, new token %v", revoked, issued)
		}
		time.Sleep(20 * time.Millisecond) // polling verdicts, with a deadline
	}
}

// TestRevisionsGoingOnAreNotGoingBack: under a steady stream of writes the
// heartbeat's read of the cluster's revision races the watch applying
// newer ones; that is never taken for a store whose revisions went back.
func TestRevisionsGoingOnAreNotGoingBack(t *testing.T) {
	// Each heartbeat's read answers while the watch goes on applying
	// (fault injection: a pause after the read).
	e := newEnvWith(t, Config{MaxStale: time.Second}, func(v *Verifier) {
		v.afterSyncCheck = func() { time.Sleep(20 * time.Millisecond) }
	})
	u, _ := e.user(nil)
	e.synced()
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				if _, err := e.writer.UpdateUser(e.ctx(), e.org, u.ID, func(u *store.User) error {
					u.Description = fmt.Sprintf("writer %d, change %d", w, i)
					return nil
				}, operator); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := e.v.changes.epoch.Load(); n != 0 {
		t.Fatalf("the revisions were taken for going back %d times", n)
	}
}
