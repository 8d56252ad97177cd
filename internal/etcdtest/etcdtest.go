// Package etcdtest starts real etcd servers for tests: an embedded
// single-node server in the test process, on a free loopback port, with its
// data in the test's temporary directory. It can be stopped and restarted on
// the same port, which is how tests simulate etcd going away and coming back.
//
// The server stands in for an external cluster, which the etcd block of a
// Caddyfile reaches by http URL; that is why it listens on TCP, where the
// embedded etcd of a gateway serves on a private unix socket only.
package etcdtest

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
)

// Server is one embedded etcd server owned by a test.
type Server struct {
	t         testing.TB
	dir       string
	clientURL string

	mu  sync.Mutex
	emb *etcdconn.Embedded
}

// Start starts a server that is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir()}
	emb, err := etcdconn.StartEmbedded(etcdconn.EmbeddedConfig{
		Dir: s.dir, ClientURL: "http://127.0.0.1:0", NoFsync: true,
	}, zap.NewNop())
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	s.emb, s.clientURL = emb, emb.ClientURL()
	t.Cleanup(s.Stop)
	return s
}

// Endpoint is the client URL, stable across restarts.
func (s *Server) Endpoint() string { return s.clientURL }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Client returns a new client of the server, closed when the test ends.
func (s *Server) Client() *clientv3.Client {
	s.t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.clientURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		s.t.Fatalf("etcd client: %v", err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Stop stops the server; clients see it as unreachable until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		s.emb.Close()
		s.emb = nil
	}
}

// Restart starts the server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		return
	}
	// The port was freed by Stop; the kernel may hold it in TIME_WAIT
	// briefly, so retry for a while rather than fail at once.
	deadline := time.Now().Add(20 * time.Second)
	for {
		emb, err := etcdconn.StartEmbedded(etcdconn.EmbeddedConfig{
			Dir: s.dir, ClientURL: s.clientURL, NoFsync: true,
		}, zap.NewNop())
		if err == nil {
			s.emb = emb
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			s.t.Fatalf("restarting etcd: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Compact compacts the server's history up to its current revision, so
// that watches resuming from an older revision get ErrCompacted.
func (s *Server) Compact(ctx context.Context) int64 {
	s.t.Helper()
	c := s.Client()
	resp, err := c.Get(ctx, "\x00")
	if err != nil {
		s.t.Fatalf("compact: %v", err)
	}
	if _, err := c.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		s.t.Fatalf("compact: %v", err)
	}
	return resp.Header.Revision
}
