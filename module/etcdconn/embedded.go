package etcdconn

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig describes an embedded single-node etcd.
type EmbeddedConfig struct {
	// Dir keeps the data across restarts. Required.
	Dir string
	// ClientURL and PeerURL default to http://127.0.0.1:0 (loopback, a free
	// port). Tests that restart a server pass the URLs it had before.
	ClientURL string
	PeerURL   string
	// ReadyTimeout bounds the start. Default: 60s.
	ReadyTimeout time.Duration
	// NoFsync trades durability for speed; for tests only.
	NoFsync bool
}

// Embedded is a running single-node etcd server inside this process.
type Embedded struct {
	etcd    *embed.Etcd
	dir     string
	lock    *dirLock
	closing *atomic.Bool
}

// StartEmbedded starts an etcd server and waits until it serves.
func StartEmbedded(c EmbeddedConfig, logger *zap.Logger) (*Embedded, error) {
	if c.Dir == "" {
		return nil, errors.New("embedded etcd needs a data directory")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating embedded etcd directory: %v", err)
	}
	// etcd itself waits forever for a data directory another process holds;
	// a lock of our own turns that into an immediate, clear error.
	lock, err := lockDir(filepath.Join(dir, "tokengate.lock"))
	if err != nil {
		return nil, fmt.Errorf("embedded etcd directory %s: %v", dir, err)
	}
	clientURL, peerURL := c.ClientURL, c.PeerURL
	if clientURL == "" {
		clientURL = "http://127.0.0.1:0"
	}
	if peerURL == "" {
		peerURL = "http://127.0.0.1:0"
	}
	cu, err := url.Parse(clientURL)
	if err != nil {
		lock.release()
		return nil, err
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		lock.release()
		return nil, err
	}

	closing := new(atomic.Bool)
	cfg := embed.NewConfig()
	cfg.Name = embeddedName
	cfg.Dir = filepath.Join(dir, "data")
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Keep an hour of history: enough for any watch to resume after a
	// hiccup, while the database stays small.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	cfg.UnsafeNoFsync = c.NoFsync
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger.WithOptions(
		zap.IncreaseLevel(zapcore.ErrorLevel),
		zap.WrapCore(func(core zapcore.Core) zapcore.Core { return quietOnClose{core, closing} }),
	))

	ready := c.ReadyTimeout
	if ready == 0 {
		ready = 60 * time.Second
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		lock.release()
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	case <-time.After(ready):
		e.Close()
		lock.release()
		return nil, fmt.Errorf("embedded etcd not ready after %s", ready)
	}
	return &Embedded{etcd: e, dir: dir, lock: lock, closing: closing}, nil
}

// ClientURL is where clients reach the server.
func (e *Embedded) ClientURL() string { return "http://" + e.etcd.Clients[0].Addr().String() }

// PeerURL is the server's peer listener; only tests restarting the server
// on the same ports need it.
func (e *Embedded) PeerURL() string { return "http://" + e.etcd.Peers[0].Addr().String() }

// Dir is the directory holding the data.
func (e *Embedded) Dir() string { return e.dir }

// Server exposes the etcd server, for tests that compact or inspect it.
func (e *Embedded) Server() *embed.Etcd { return e.etcd }

// Close stops the server and releases its directory.
func (e *Embedded) Close() {
	if e.closing.Swap(true) {
		return
	}
	e.etcd.Close()
	e.lock.release()
}

// quietOnClose drops etcd's log entries once we have asked it to stop: its
// listeners report their own closing as errors, which would only alarm.
type quietOnClose struct {
	zapcore.Core
	closing *atomic.Bool
}

func (q quietOnClose) With(f []zapcore.Field) zapcore.Core {
	return quietOnClose{q.Core.With(f), q.closing}
}

func (q quietOnClose) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if q.closing.Load() {
		return ce
	}
	return q.Core.Check(e, ce)
}
