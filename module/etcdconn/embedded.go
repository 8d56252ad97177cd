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
	// ClientURL is empty for a server on a unix socket that only this
	// user can reach (see socket.go). Tests and tools whose server stands
	// in for an external cluster, for other processes or for the etcd
	// block of a Caddyfile, pass an http URL on loopback instead, such as
	// http://127.0.0.1:0 (a free port); anyone on the host can use it.
	ClientURL string
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

	// socket is the client socket's URL, nil on TCP; tmpDir the private
	// directory made for it when dir's path was too long, else "".
	socket *url.URL
	tmpDir string
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
	if err := makePrivate(dir); err != nil {
		return nil, fmt.Errorf("embedded etcd directory %s: %v", dir, err)
	}
	// etcd itself waits forever for a data directory another process holds;
	// a lock of our own turns that into an immediate, clear error. Holding
	// it also makes it safe for etcd to remove a socket file left by a
	// crashed run before it binds its own.
	lock, err := lockDir(filepath.Join(dir, "tokengate.lock"))
	if err != nil {
		return nil, fmt.Errorf("embedded etcd directory %s: %v", dir, err)
	}
	emb := &Embedded{dir: dir, lock: lock, closing: new(atomic.Bool)}
	if err := emb.start(c, logger); err != nil {
		emb.release()
		return nil, err
	}
	return emb, nil
}

// start starts etcd and waits until it serves.
func (emb *Embedded) start(c EmbeddedConfig, logger *zap.Logger) error {
	cu, err := emb.listenURL(c.ClientURL)
	if err != nil {
		return err
	}
	pu, err := url.Parse(noPeers)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = embeddedName
	cfg.Dir = filepath.Join(emb.dir, "data")
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = nil
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Keep an hour of history: enough for any watch to resume after a
	// hiccup, while the database stays small.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	cfg.UnsafeNoFsync = c.NoFsync
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger.WithOptions(
		zap.IncreaseLevel(zapcore.ErrorLevel),
		zap.WrapCore(func(core zapcore.Core) zapcore.Core { return quietOnClose{core, emb.closing} }),
	))

	ready := c.ReadyTimeout
	if ready == 0 {
		ready = 60 * time.Second
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting embedded etcd: %w", err)
	}
	emb.etcd = e
	// The directory keeps others out already; the socket's own mode is a
	// second guard, for a directory someone opens up later.
	if emb.socket != nil {
		if err := os.Chmod(emb.socket.Path, 0o600); err != nil {
			return fmt.Errorf("embedded etcd socket: %v", err)
		}
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("starting embedded etcd: %w", err)
	case <-time.After(ready):
		return fmt.Errorf("embedded etcd not ready after %s", ready)
	}
}

// listenURL is where etcd is to serve its clients: the URL a test asked for
// or, when it asked none, a socket (noted in emb, with the temporary
// directory made for it, if any).
func (emb *Embedded) listenURL(asked string) (url.URL, error) {
	if asked != "" {
		u, err := url.Parse(asked)
		if err != nil {
			return url.URL{}, err
		}
		return *u, nil
	}
	sockDir, temporary, err := socketDir(emb.dir)
	if err != nil {
		return url.URL{}, err
	}
	if temporary {
		emb.tmpDir = sockDir
	}
	u := socketURL(sockDir)
	emb.socket = &u
	return u, nil
}

// ClientURL is where clients reach the server: unix:// and the socket's
// absolute path, as etcd's client and etcdctl take it (escaped as in any
// URL: gRPC unescapes it), or the http URL of the TCP listener a test asked
// for.
func (e *Embedded) ClientURL() string {
	if e.socket != nil {
		return e.socket.String()
	}
	return "http://" + e.etcd.Clients[0].Addr().String()
}

// Dir is the directory holding the data.
func (e *Embedded) Dir() string { return e.dir }

// Server exposes the etcd server, for tests that compact or inspect it.
func (e *Embedded) Server() *embed.Etcd { return e.etcd }

// Close stops the server and releases its directory.
func (e *Embedded) Close() {
	if e.closing.Swap(true) {
		return
	}
	e.release()
}

// release stops etcd, if it started, removes the socket's temporary
// directory, if one was made, and unlocks the data directory.
func (e *Embedded) release() {
	e.closing.Store(true)
	if e.etcd != nil {
		e.etcd.Close()
	}
	if e.tmpDir != "" {
		os.RemoveAll(e.tmpDir)
	}
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
