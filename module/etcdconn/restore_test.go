package etcdconn

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// snapshotOf writes a snapshot of the store conn reaches to a file.
func snapshotOf(t *testing.T, conn *Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := conn.Client.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(t.TempDir(), "store.snapshot")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRestoreEmbedded: a snapshot restored for the embedded store holds
// every key, past the snapshot's revision (so no watcher takes restored
// revisions for ones it has seen); a directory that holds a store is
// refused unless replaced, and one in use is refused at once.
func TestRestoreEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := Open(nil, t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range 100 {
		if _, err := src.Client.Put(ctx, fmt.Sprintf("%s/k%03d", src.Prefix, i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := src.Client.Get(ctx, src.Prefix+"/k099")
	if err != nil {
		t.Fatal(err)
	}
	before := got.Header.Revision
	file := snapshotOf(t, src)

	dir := t.TempDir()
	dataDir, aside, err := RestoreEmbedded(RestoreConfig{Snapshot: file, Dir: dir}, zap.NewNop())
	if err != nil || aside != "" || dataDir != filepath.Join(dir, "data") {
		t.Fatalf("restore: %q %q %v", dataDir, aside, err)
	}
	if _, _, err := RestoreEmbedded(RestoreConfig{Snapshot: file, Dir: dir}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("restore over a store: %v", err)
	}

	restored, err := Open(nil, dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	all, err := restored.Client.Get(ctx, restored.Prefix+"/k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Kvs) != 100 || all.Header.Revision < before+restoreRevisionBump {
		t.Fatalf("restored %d keys at revision %d (snapshot at %d)", len(all.Kvs), all.Header.Revision, before)
	}
	// The gateway holds the directory: a restore fails at once.
	if _, _, err := RestoreEmbedded(RestoreConfig{Snapshot: file, Dir: dir, Replace: true}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "stop the gateway") {
		t.Fatalf("restore into a running store: %v", err)
	}
	if _, err := restored.Client.Put(ctx, restored.Prefix+"/after", "x"); err != nil {
		t.Fatal(err)
	}
	restored.Close()

	// Replacing moves the store aside, keeps it whole.
	dataDir, aside, err = RestoreEmbedded(RestoreConfig{Snapshot: file, Dir: dir, Replace: true,
		Now: func() time.Time { return time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC) }}, zap.NewNop())
	if err != nil || aside != filepath.Join(dir, "data.before-restore-20261205T040000Z") {
		t.Fatalf("replace: %q %q %v", dataDir, aside, err)
	}
	if _, err := os.Stat(filepath.Join(aside, "member")); err != nil {
		t.Fatalf("the store moved aside: %v", err)
	}
	again, err := Open(nil, dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	after, err := again.Client.Get(ctx, again.Prefix+"/after")
	if err != nil || len(after.Kvs) != 0 {
		t.Fatalf("a key written after the snapshot survived the restore: %v %v", after, err)
	}
}
