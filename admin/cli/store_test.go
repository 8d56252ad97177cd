package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
)

// A gateway on the embedded store, with the admin API on its admin
// endpoint and a gateway route.
const embeddedCaddyfile = `{
	admin 127.0.0.1:{{ADMIN}}
	persist_config off
	tokengate {
		embedded_dir {{DIR}}
		webhook_allow_private
	}
	log {
		output file {{LOG}}
	}
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api {
			scope organization
		}
		respond "ok {http.auth.user.id}"
	}
}
`

// embeddedGateway runs embeddedCaddyfile on dir; it returns the admin
// endpoint's address and the site's base URL.
func embeddedGateway(t *testing.T, dir string) (adminAddr, site string) {
	t.Helper()
	adminPort, port := caddytest.FreePort(t), caddytest.FreePort(t)
	caddytest.Load(t, embeddedCaddyfile, map[string]string{"ADMIN": fmt.Sprint(adminPort), "DIR": dir,
		"LOG": filepath.Join(t.TempDir(), "caddy.log"), "PORT": fmt.Sprint(port)})
	return fmt.Sprintf("127.0.0.1:%d", adminPort), fmt.Sprintf("http://127.0.0.1:%d", port)
}

// operatorCall calls the admin API on the admin endpoint at addr.
func operatorCall(t *testing.T, addr, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://"+addr+"/tokengate"+path, rd)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// TestSnapshotAndRestore: a snapshot taken with the command while admins
// keep writing, restored with the command for a new gateway's embedded
// store, holds every user, token, webhook and audit event made before the
// snapshot: the tokens are admitted by the new gateway.
func TestSnapshotAndRestore(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)
	adminAddr, _ := embeddedGateway(t, t.TempDir())
	if status, _ := operatorCall(t, adminAddr, "POST", "/orgs", map[string]string{"id": "acme", "name": "Acme"}); status != 201 {
		t.Fatalf("creating the org: %d", status)
	}
	type made struct{ user, secret string }
	var before []made
	newUser := func(name string) (made, bool) {
		status, m := operatorCall(t, adminAddr, "POST", "/orgs/acme/users", map[string]any{"type": "programmatic",
			"level": "organization", "role": "viewer", "name": name})
		if status != 201 {
			return made{}, false
		}
		user, _ := m["user"].(map[string]any)
		tok, _ := m["token"].(map[string]any)
		id, _ := user["id"].(string)
		secret, _ := tok["secret"].(string)
		return made{id, secret}, true
	}
	for i := range 20 {
		m, ok := newUser(fmt.Sprint("before-", i))
		if !ok {
			t.Fatal("creating a user failed")
		}
		before = append(before, m)
	}
	status, wh := operatorCall(t, adminAddr, "POST", "/orgs/acme/webhooks", map[string]any{"url": receiver.URL, "events": []string{"*"}})
	if status != 201 {
		t.Fatalf("creating a webhook: %d %v", status, wh)
	}
	_, audit := operatorCall(t, adminAddr, "GET", "/orgs/acme/audit?limit=1000", nil)
	events, _ := audit["events"].([]any)
	if len(events) < 22 {
		t.Fatalf("%d audit events before the snapshot", len(events))
	}

	// Admins keep writing while the snapshot is taken.
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var during atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if _, ok := newUser(fmt.Sprint("during-", i)); ok {
				during.Add(1)
			}
		}
	}()
	for during.Load() < 3 { // the load is under way
		time.Sleep(5 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "backup.snapshot")
	snap := run(t, nil, "store", "snapshot", file, "--address", adminAddr)
	stopLoad()
	wg.Wait()
	if snap.status != 0 || !strings.Contains(snap.stdout, `"revision"`) {
		t.Fatalf("store snapshot: %d\n%s%s", snap.status, snap.stdout, snap.stderr)
	}
	if again := run(t, nil, "store", "snapshot", file, "--address", adminAddr); again.status == 0 || !strings.Contains(again.stderr, "exists") {
		t.Fatalf("a snapshot over another: %d %s", again.status, again.stderr)
	}
	caddy.Stop()

	dir := t.TempDir()
	restore := run(t, nil, "store", "restore", file, "--embedded-dir", dir)
	if restore.status != 0 || !strings.Contains(restore.stdout, filepath.Join(dir, "data")) {
		t.Fatalf("store restore: %d\n%s%s", restore.status, restore.stdout, restore.stderr)
	}
	adminAddr, site := embeddedGateway(t, dir)
	for _, m := range before {
		if status, _ := operatorCall(t, adminAddr, "GET", "/orgs/acme/users/"+m.user, nil); status != 200 {
			t.Errorf("user %s: %d after the restore", m.user, status)
		}
		req, _ := http.NewRequest("GET", site+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+m.secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("the token of %s: %d after the restore", m.user, res.StatusCode)
		}
	}
	if status, _ := operatorCall(t, adminAddr, "GET", "/orgs/acme/webhooks/"+wh["id"].(string), nil); status != 200 {
		t.Errorf("webhook: %d after the restore", status)
	}
	_, audit = operatorCall(t, adminAddr, "GET", "/orgs/acme/audit?limit=1000", nil)
	restored := map[string]bool{}
	after, _ := audit["events"].([]any)
	for _, e := range after {
		if ev, ok := e.(map[string]any); ok {
			restored[fmt.Sprint(ev["id"])] = true
		}
	}
	for _, e := range events {
		if id := fmt.Sprint(e.(map[string]any)["id"]); !restored[id] {
			t.Errorf("audit event %s lost in the restore", id)
		}
	}
	t.Logf("%d users written during the snapshot; %d audit events after the restore", during.Load(), len(after))
}
