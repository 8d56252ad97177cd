package etcdconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestEmbeddedStartIsBounded: a data directory the embedded etcd cannot
// serve from — here one restored as a member of a two-member cluster, so
// that it waits for a quorum that never comes, as a restore with the wrong
// tool can leave it — fails the start within ReadyTimeout with an error
// saying what to do, and the wait says in the log what it waits for.
func TestEmbeddedStartIsBounded(t *testing.T) {
	src, err := Open(nil, t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	file := snapshotOf(t, src)
	src.Close()

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err = snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: file, Name: embeddedName, OutputDataDir: filepath.Join(dir, "data"),
		PeerURLs:       []string{noPeers},
		InitialCluster: embeddedName + "=" + noPeers + ",absent=http://127.0.0.1:9",
	})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	start := time.Now()
	_, err = StartEmbedded(EmbeddedConfig{Dir: dir, ReadyTimeout: 6 * time.Second, NoFsync: true}, zap.New(core))
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not become ready within 6s") || !strings.Contains(err.Error(), "store restore") {
		t.Fatalf("start: %v", err)
	}
	if took > 15*time.Second { // 6s to be ready, at most 3s to stop what did not start
		t.Fatalf("the start failed after %s, past its bound", took)
	}
	if logs.FilterMessageSnippet("still waiting for the embedded etcd").Len() == 0 {
		t.Fatalf("no log line said what the start waited for: %v", logs.All())
	}
	// The directory is free again: a good store starts there.
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	again, err := StartEmbedded(EmbeddedConfig{Dir: dir, NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatalf("start after the failed one: %v", err)
	}
	again.Close()
}
