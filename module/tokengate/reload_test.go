package tokengate_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/tokengate"

	"github.com/tokengate/tokengate/internal/caddytest"
)

const reloadCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		embedded_dir {{DIR}}
	}
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api
		respond "ok {http.auth.user.id}"
	}
}
`

// TestReloadsUnderLoad: 100 config reloads while clients keep sending
// requests: every request is answered 200, the embedded etcd and the watch
// stay up, and goroutines and heap come back to where they were.
//
// Caddy hands its listening socket to the new config with SO_REUSEPORT; the
// kernel resets connections still queued on the old socket when it closes
// (plain Caddy without tokengate shows the same). Those never reach any
// handler, so the clients retry them, as HTTP clients and load balancers do;
// what must never happen is an answer other than 200.
func TestReloadsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("100 reloads under load")
	}
	port := caddytest.FreePort(t)
	cfg := caddytest.Load(t, reloadCaddyfile, map[string]string{"DIR": t.TempDir(), "PORT": fmt.Sprint(port)})
	app := activeApp(t)
	emb, verifier := app.Conn().Embedded(), app.Verifier()

	g := &gateway{t: t, writer: app.Store(), org: "acme", base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if _, err := g.writer.CreateOrg(g.ctx(), store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	g.act1 = g.account("acme")
	var tokens []string
	for range 20 {
		_, tok := g.user(nil)
		tokens = append(tokens, tok)
	}
	for _, tok := range tokens {
		g.do("GET", "/api/warm", tok).want(t, 200, "")
	}
	restarts := verifier.Stats().WatchRestarts
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, answered, failed, resets atomic.Int64
	var firstFailure atomic.Value
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 4 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				sent.Add(1)
				var status int
				var err error
				for retryUntil := time.Now().Add(10 * time.Second); time.Now().Before(retryUntil); {
					req, _ := http.NewRequest("GET", g.base+"/api/load", nil)
					req.Header.Set("Authorization", "Bearer "+tokens[(i*7+n)%len(tokens)])
					var resp *http.Response
					if resp, err = client.Do(req); err != nil {
						resets.Add(1) // the listener handoff; never an HTTP answer
						continue
					}
					status = resp.StatusCode
					resp.Body.Close()
					break
				}
				if status != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint(status, err))
				}
				answered.Add(1)
			}
		})
	}
	for i := range 100 {
		// Each reload happens under load: another request has been
		// answered since the previous one.
		deadline := time.Now().Add(10 * time.Second)
		for seen := answered.Load(); answered.Load() == seen; {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: no request answered for 10 s", i)
			}
			time.Sleep(time.Millisecond) // polling interval
		}
		if err := caddy.Load(cfg, true); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	stop()
	wg.Wait()
	client.CloseIdleConnections()
	t.Logf("%d requests during 100 reloads, %d failed, %d connections reset by the listener handoff and retried",
		sent.Load(), failed.Load(), resets.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if answered.Load() < 100 {
		t.Fatalf("only %d requests answered across 100 reloads", answered.Load())
	}
	app = activeApp(t)
	if app.Conn().Embedded() != emb || app.Verifier() != verifier {
		t.Fatal("a reload restarted the embedded etcd or the cache")
	}
	if verifier.Stats().WatchRestarts != restarts {
		t.Fatal("a reload restarted the watch")
	}
	waitGoroutines(t, baseline+5)
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if after.HeapInuse <= before.HeapInuse+before.HeapInuse/2+8<<20 {
			t.Logf("heap in use: %d KiB before, %d KiB after", before.HeapInuse>>10, after.HeapInuse>>10)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap in use grew from %d KiB to %d KiB over 100 reloads", before.HeapInuse>>10, after.HeapInuse>>10)
		}
		time.Sleep(100 * time.Millisecond) // polling interval while finalizers run
	}
}

func activeApp(t *testing.T) *tokengate.App {
	t.Helper()
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*tokengate.App)
}

// waitGoroutines waits until at most want goroutines run.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
