package tokengate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/store"
)

// When a gateway connects to its store it checks the store's schema
// version (store.CheckSchema: written when missing, a newer one refused)
// and compares what it finds with what it found the last time it ran, kept
// in stores.json under Caddy's data directory: a store that had a schema
// key and has none now, or held organizations and holds none now, looks
// wiped (a data directory lost, a restore from an old backup, a wrong
// prefix), and says so once, loudly, since every token would otherwise
// just be refused without a word.

// storeCheckTimeout bounds the check at start; when etcd does not answer
// within it, the check runs again in the background until it does.
const storeCheckTimeout = 5 * time.Second

// storeMemory is what a gateway remembers of one store between runs.
type storeMemory struct {
	ClusterID uint64    `json:"cluster_id"`
	Schema    int       `json:"schema"`
	Orgs      int64     `json:"orgs"`
	Seen      time.Time `json:"seen"`
}

// storeMemoryMu serialises reading and writing stores.json in a process.
var storeMemoryMu sync.Mutex

func storeMemoryPath() string { return filepath.Join(caddy.AppDataDir(), "tokengate", "stores.json") }

// checkedConn is the pooled connection with its background check.
type checkedConn struct {
	*etcdconn.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

// Destruct stops the check, which ends at once (its etcd calls follow the
// context), then closes the connection.
func (c checkedConn) Destruct() error {
	c.cancel()
	<-c.done
	return c.Close()
}

// openChecked opens the connection and checks the store: a newer schema
// fails the start; an etcd that does not answer yet is checked again in
// the background, the gateway starting meanwhile (cached nothing yet, it
// answers 503 until etcd is reached).
func openChecked(conn *etcdconn.Conn, key string, logger *zap.Logger) (checkedConn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := checkedConn{Conn: conn, cancel: cancel, done: make(chan struct{})}
	s := store.New(conn.Client, conn.Prefix)
	first, cancelFirst := context.WithTimeout(ctx, storeCheckTimeout)
	err := checkStore(first, s, key, conn.Description, logger)
	cancelFirst()
	switch {
	case err == nil:
		close(c.done)
	case errors.Is(err, store.ErrUnavailable):
		logger.Warn("could not check the store's schema yet: etcd does not answer; checking again until it does",
			zap.String("store", conn.Description), zap.Error(err))
		go func() {
			defer close(c.done)
			b := backoff.New(time.Second, 30*time.Second)
			for ctx.Err() == nil {
				b.Wait(ctx)
				err := checkStore(ctx, s, key, conn.Description, logger)
				if err == nil || !errors.Is(err, store.ErrUnavailable) {
					if err != nil {
						logger.Error("the store cannot be used by this tokengate; stop it and fix the store or upgrade",
							zap.String("store", conn.Description), zap.Error(err))
					}
					return
				}
			}
		}()
	default:
		cancel()
		return checkedConn{}, err
	}
	return c, nil
}

// checkStore checks the schema, warns when the store looks wiped, and
// remembers what it found.
func checkStore(ctx context.Context, s *store.Store, key, name string, logger *zap.Logger) error {
	check, err := s.CheckSchema(ctx, "tokengate "+Version())
	if err != nil {
		return err
	}
	storeMemoryMu.Lock()
	defer storeMemoryMu.Unlock()
	all := readStoreMemory(logger)
	last, seen := all[key]
	if seen {
		since := last.Seen.UTC().Format(time.RFC3339)
		switch {
		case last.Schema > 0 && check.Created:
			logger.Error("the store looks wiped: it has no schema key, though this gateway found one there at "+since+
				"; every user and token may be gone (a lost data directory, a restore from an old backup, another prefix?)",
				zap.String("store", name), zap.Int64("orgs_now", check.Orgs), zap.Int64("orgs_then", last.Orgs))
		case last.Orgs > 0 && check.Orgs == 0:
			logger.Error(fmt.Sprintf("the store looks wiped: it holds no organizations, though it held %d when this gateway last ran at %s", last.Orgs, since),
				zap.String("store", name))
		case last.ClusterID != 0 && last.ClusterID != check.ClusterID:
			logger.Warn("the etcd cluster is not the one this gateway used at "+since+" (its cluster id changed): restored or built anew",
				zap.String("store", name), zap.Int64("orgs", check.Orgs))
		}
	}
	all[key] = storeMemory{ClusterID: check.ClusterID, Schema: check.Version, Orgs: check.Orgs, Seen: time.Now()}
	writeStoreMemory(all, logger)
	if check.MigratedFrom != 0 {
		logger.Warn("store schema migrated: gateways of the older version must be upgraded (they refuse to start on it)",
			zap.String("store", name), zap.Int("from", check.MigratedFrom), zap.Int("schema", check.Version))
	}
	if check.UpgradePending {
		logger.Info("store schema older than this gateway's: once every gateway of the older version is stopped for good, run tokengate store upgrade",
			zap.String("store", name), zap.Int("schema", check.Version), zap.Int("this_gateway", store.SchemaVersion))
	}
	if check.Created {
		logger.Info("store schema written", zap.String("store", name), zap.Int("schema", check.Version), zap.Int64("orgs", check.Orgs))
	}
	return nil
}

func readStoreMemory(logger *zap.Logger) map[string]storeMemory {
	all := map[string]storeMemory{}
	data, err := os.ReadFile(storeMemoryPath())
	if err != nil {
		return all
	}
	if err := json.Unmarshal(data, &all); err != nil {
		logger.Warn("ignoring what the gateway remembered of its stores", zap.String("file", storeMemoryPath()), zap.Error(err))
		return map[string]storeMemory{}
	}
	return all
}

// writeStoreMemory replaces the file whole (a temporary file renamed), so
// a crash never leaves half of one.
func writeStoreMemory(all map[string]storeMemory, logger *zap.Logger) {
	path := storeMemoryPath()
	data, err := json.MarshalIndent(all, "", "  ")
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, data, 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		logger.Warn("could not remember the store for the next start", zap.String("file", path), zap.Error(err))
	}
}
