package etcdconn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// RestoreConfig says what RestoreEmbedded restores, and where.
type RestoreConfig struct {
	// Snapshot is the file written by `tokengate store snapshot` (or
	// etcdctl snapshot save). Required.
	Snapshot string
	// Dir is the embedded store's directory (embedded_dir): the data goes
	// to its data/ folder, as the embedded etcd keeps it. Required.
	Dir string
	// Replace moves an existing data/ folder aside (to
	// data.before-restore-<time>) instead of refusing.
	Replace bool
	// Now gives the time in the name of the folder moved aside; tests set
	// it. Default: time.Now.
	Now func() time.Time
	// KeepRevision restores the snapshot's revisions as they were, as
	// etcd 3.4's `etcdctl snapshot restore` does (it cannot bump them):
	// for tests of gateways that watched the store before.
	KeepRevision bool
}

// embeddedName is the embedded etcd's member name.
const embeddedName = "tokengate"

// restoredPeerURL is the peer URL a restored member is recorded with: the
// one the embedded store advertises, where nothing listens (a single
// member never dials a peer).
const restoredPeerURL = noPeers

// restoreRevisionBump is how far a restore moves the store's revision
// past the snapshot's, marking everything before as compacted: a gateway
// that watched the store before the restore then sees its history lost
// and drops its cache, instead of taking the restored (older) revisions
// for ones it has already seen. A billion is what etcd's own docs use.
const restoreRevisionBump = 1_000_000_000

// RestoreEmbedded restores an etcd snapshot for the embedded store, with
// the embedded etcd's own version of etcd (etcdutl's snapshot package, the
// same code as `etcdutl snapshot restore`). The gateway using Dir must be
// stopped: its lock on the directory is taken for the restore, so a
// running one makes this fail at once. The snapshot's integrity hash is
// checked.
func RestoreEmbedded(c RestoreConfig, logger *zap.Logger) (dataDir string, movedAside string, err error) {
	if c.Snapshot == "" || c.Dir == "" {
		return "", "", errors.New("a snapshot file and the embedded store's directory are both required")
	}
	if _, err := os.Stat(c.Snapshot); err != nil {
		return "", "", fmt.Errorf("snapshot: %v", err)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("embedded store directory: %v", err)
	}
	lock, err := lockDir(filepath.Join(dir, "tokengate.lock"))
	if err != nil {
		return "", "", fmt.Errorf("embedded store directory %s: %v; stop the gateway before restoring", dir, err)
	}
	defer lock.release()

	dataDir = filepath.Join(dir, "data")
	switch _, err := os.Stat(dataDir); {
	case err == nil && !c.Replace:
		return "", "", fmt.Errorf("%s already holds a store: restore with --replace to move it aside first, or into an empty directory", dataDir)
	case err == nil:
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		movedAside = filepath.Join(dir, "data.before-restore-"+now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(dataDir, movedAside); err != nil {
			return "", "", fmt.Errorf("moving the current store aside: %v", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", err
	}

	restore := snapshot.RestoreConfig{
		SnapshotPath:        c.Snapshot,
		Name:                embeddedName,
		OutputDataDir:       dataDir,
		PeerURLs:            []string{restoredPeerURL},
		InitialCluster:      embeddedName + "=" + restoredPeerURL,
		InitialClusterToken: "etcd-cluster",
		RevisionBump:        restoreRevisionBump,
		MarkCompacted:       true,
	}
	if c.KeepRevision {
		restore.RevisionBump, restore.MarkCompacted = 0, false
	}
	err = snapshot.NewV3(logger).Restore(restore)
	if err != nil {
		os.RemoveAll(dataDir)
		if movedAside != "" {
			if rerr := os.Rename(movedAside, dataDir); rerr != nil {
				return "", "", fmt.Errorf("restoring the snapshot: %v; the store before it is in %s", err, movedAside)
			}
		}
		return "", "", fmt.Errorf("restoring the snapshot: %v", err)
	}
	return dataDir, movedAside, os.Chmod(dataDir, 0o700)
}
