package admin_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdcluster"
	"github.com/tokengate/tokengate/module/tokengate"
)

// TestAdminAnswersAtOnceWhileEtcdIsDown: once the store is known to be
// unreachable, admin calls answer 503 store_unavailable within 2 s instead
// of waiting for etcd, and nothing is changed; when etcd is back they work
// again. (Before, a client with a 5 s timeout heard nothing.)
func TestAdminAnswersAtOnceWhileEtcdIsDown(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	v := app.(*tokengate.App).Verifier()

	e.etcd.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for !v.Down() {
		if time.Now().After(deadline) {
			t.Fatal("the store was never known to be down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/orgs/" + w.org + "/accounts"},
		{"GET", "/orgs/" + w.org + "/users"},
		{"POST", "/orgs"},
	} {
		start := time.Now()
		r := e.call("", c.method, c.path, map[string]string{"name": "x"})
		took := time.Since(start)
		if r.status != 503 || !strings.Contains(string(r.body), `"store_unavailable"`) || took > 2*time.Second {
			t.Errorf("%s %s while etcd is down: %d %s after %v", c.method, c.path, r.status, r.body, took)
		}
	}

	e.etcd.Restart()
	deadline = time.Now().Add(30 * time.Second)
	for v.Down() {
		if time.Now().After(deadline) {
			t.Fatal("the store never came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.must(e.call("", "POST", "/orgs/"+w.org+"/accounts", map[string]string{"name": "after"}), 201)
}

// TestAdminWriteAtTheOutagesFirstMoment: a write sent the moment etcd
// stops answering (a real etcd process, paused: no connection is refused,
// nothing answers), before anything knows it is gone, answers 503 within
// 2 s, not after the call's whole deadline.
func TestAdminWriteAtTheOutagesFirstMoment(t *testing.T) {
	cluster := etcdcluster.Start(t, 1)
	e := &env{t: t, logFile: filepath.Join(t.TempDir(), "caddy.log")}
	adminPort, port := caddytest.FreePort(t), caddytest.FreePort(t)
	e.adminURL = fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort)
	e.siteURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	caddytest.Load(t, envCaddyfile, map[string]string{"ADMIN": fmt.Sprint(adminPort), "ETCD": cluster.Endpoints()[0],
		"LOG": e.logFile, "PORT": fmt.Sprint(port)})
	w := e.setup()
	cluster.Pause(0)
	defer cluster.Resume(0)
	start := time.Now()
	r := e.call("", "POST", "/orgs/"+w.org+"/accounts", map[string]string{"name": "x"})
	took := time.Since(start)
	if r.status != 503 || r.code != "store_unavailable" || took > 2*time.Second {
		t.Fatalf("a write at the outage's first moment: %d %s after %v", r.status, r.body, took)
	}
	t.Logf("503 after %v", took.Round(time.Millisecond))
}
