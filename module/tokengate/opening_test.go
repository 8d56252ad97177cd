package tokengate

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/etcdconn"
)

// blackHole accepts connections and never answers on them, as an etcd
// member stopped with SIGSTOP does. Fault injection: a stand-in for a
// member that hangs, not for etcd.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestRunningWhileTheStoreOpens: a request that arrives while the store
// opens (etcd not answering) waits no longer than its own context; a
// config unloaded meanwhile hands out nothing, and what the open made is
// let go of when it ends.
func TestRunningWhileTheStoreOpens(t *testing.T) {
	addr := blackHole(t)
	before := runtime.NumGoroutine()

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := &App{Etcd: &etcdconn.Config{Endpoints: []string{"http://" + addr}, Prefix: "/tg",
		DialTimeout: caddy.Duration(time.Second)}}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}

	// A request with half a second to live gets its answer when its
	// context ends, though the open goes on (the schema check waits 5 s
	// for an etcd that does not answer).
	reqCtx, reqCancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer reqCancel()
	start := time.Now()
	_, err := a.RunningContext(reqCtx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request waiting for the store: %v, want its deadline", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the request waited %s past its 500ms deadline", took)
	}
	if v := a.VerifierContext(reqCtx); v != nil {
		t.Fatal("a verifier for a request whose context has ended")
	}

	// Unloaded while the open goes on: nothing is handed out, then or
	// once the open ends.
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer waitCancel()
	if _, err := a.RunningContext(waitCtx); !errors.Is(err, errUnloaded) {
		t.Fatalf("after Cleanup: %v, want %v", err, errUnloaded)
	}
	if a.Verifier() != nil || a.Store() != nil || a.Conn() != nil || a.Limiter() != nil {
		t.Fatal("resources handed out after Cleanup")
	}
	// What the open made is let go of: its goroutines (client, watch,
	// election, limiter) end.
	cancel()
	waitGoroutines(t, before)
}
