package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

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
