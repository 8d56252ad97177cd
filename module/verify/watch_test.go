package verify

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
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
	if err := e.writer.RevokeToken(e.ctx(), e.org, u.ID, tokens[0].ID, operator); err != nil {
		t.Fatal(err)
	}
	_, fresh := e.user(nil)

	deadline := time.Now().Add(20 * time.Second)
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
