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
	// ReadyTimeout bounds the start. Default: DefaultReadyTimeout (30s).
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
		ready = DefaultReadyTimeout
	}
	logger.Info("starting the embedded etcd", zap.String("dir", emb.dir), zap.String("client_url", cu.String()),
		zap.Duration("ready_timeout", ready))
	e, err := startBounded(cfg, ready, emb.dir, logger)
	if err != nil {
		return err
	}
	emb.etcd = e
	// The directory keeps others out already; the socket's own mode is a
	// second guard, for a directory someone opens up later.
	if emb.socket != nil {
		if err := os.Chmod(emb.socket.Path, 0o600); err != nil {
			return fmt.Errorf("embedded etcd socket: %v", err)
		}
	}
	return nil
}

// closeTimeout bounds the wait for etcd to stop. A server that never
// became ready (waiting for a quorum its data says it needs) does not
// stop when asked; it is left behind, its process ending soon after.
const closeTimeout = 3 * time.Second

// closeBounded stops e, waiting at most d.
func closeBounded(e *embed.Etcd, d time.Duration) {
	done := make(chan struct{})
	go func() {
		e.Close()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// DefaultReadyTimeout bounds the embedded etcd's start.
const DefaultReadyTimeout = 30 * time.Second

// readyNotice is how often a slow start says what it still waits for.
const readyNotice = 5 * time.Second

// startBounded starts etcd and waits until it serves, at most ready: a
// data directory etcd cannot read (another version's, a damaged one) can
// make etcd wait forever, while Caddy, starting, ignores signals. Every
// readyNotice it logs what it still waits for. When etcd has not even
// opened its data by the deadline, the start is left to finish (or not)
// in the background and closed if it ever does; the caller fails at once.
func startBounded(cfg *embed.Config, ready time.Duration, dir string, logger *zap.Logger) (*embed.Etcd, error) {
	type started struct {
		e   *embed.Etcd
		err error
	}
	opened := make(chan started, 1)
	abandoned := make(chan struct{})
	go func() {
		e, err := embed.StartEtcd(cfg)
		select {
		case opened <- started{e, err}:
		case <-abandoned:
			if e != nil {
				closeBounded(e, closeTimeout)
			}
		}
	}()
	deadline := time.NewTimer(ready)
	defer deadline.Stop()
	tick := time.NewTicker(readyNotice)
	defer tick.Stop()
	begun := time.Now()
	var e *embed.Etcd
	var readyCh <-chan struct{}
	var errCh <-chan error
	for {
		select {
		case s := <-opened:
			if s.err != nil {
				return nil, fmt.Errorf("starting embedded etcd in %s: %w", dir, s.err)
			}
			e, readyCh, errCh = s.e, s.e.Server.ReadyNotify(), s.e.Err()
		case <-readyCh:
			return e, nil
		case err := <-errCh:
			closeBounded(e, closeTimeout)
			return nil, fmt.Errorf("starting embedded etcd in %s: %w", dir, err)
		case <-tick.C:
			what := "opening its data (reading the database and replaying the log)"
			if e != nil {
				what = "its raft member to become ready"
			}
			logger.Warn("still waiting for the embedded etcd: "+what, zap.String("dir", dir),
				zap.Duration("waited", time.Since(begun).Round(time.Second)), zap.Duration("ready_timeout", ready))
		case <-deadline.C:
			if e != nil {
				closeBounded(e, closeTimeout)
			} else {
				close(abandoned)
			}
			return nil, fmt.Errorf("the embedded etcd in %s did not become ready within %s: its data may come from another "+
				"etcd version or be damaged (restore a snapshot with `tokengate store restore`, which uses this build's etcd)", dir, ready)
		}
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
		closeBounded(e.etcd, closeTimeout)
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
