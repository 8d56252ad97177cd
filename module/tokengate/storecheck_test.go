package tokengate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
)

const storeCheckCaddyfile = `{
	admin off
	persist_config off
	log {
		output file {{LOG}}
		format json
	}
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
}

http://127.0.0.1:{{PORT}} {
	route /api/* {
		tokengate api
		respond "ok"
	}
}
`

// loadStoreCheck loads the config on etcd and returns the log file, or the
// error Caddy's load returned.
func loadStoreCheck(t *testing.T, etcd *etcdtest.Server) (string, error) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "caddy.log")
	cfg := caddytest.Adapt(t, storeCheckCaddyfile, map[string]string{"ETCD": etcd.Endpoint(), "LOG": log,
		"PORT": fmt.Sprint(caddytest.FreePort(t))})
	err := caddy.Load(cfg, true)
	if err == nil {
		t.Cleanup(func() { caddy.Stop() })
	}
	return log, err
}

// waitLog waits until the log file holds want.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, data)
		}
		time.Sleep(20 * time.Millisecond) // polling a file, with a deadline
	}
}

// TestStoreSchema: the first gateway on a store writes its schema
// version; a store of a newer version is refused at start with an error
// naming both versions.
func TestStoreSchema(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := loadStoreCheck(t, etcd); err != nil {
		t.Fatal(err)
	}
	resp, err := etcd.Client().Get(ctx, "/tg/schema")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("schema key: %v %v", resp, err)
	}
	var sc store.Schema
	if err := json.Unmarshal(resp.Kvs[0].Value, &sc); err != nil || sc.Version != store.SchemaVersion || !strings.HasPrefix(sc.WrittenBy, "tokengate ") {
		t.Fatalf("schema %s: %v", resp.Kvs[0].Value, err)
	}
	caddy.Stop()

	newer, _ := json.Marshal(store.Schema{Version: store.SchemaVersion + 1, WrittenBy: "tokengate v99.0.0"})
	if _, err := etcd.Client().Put(ctx, "/tg/schema", string(newer)); err != nil {
		t.Fatal(err)
	}
	_, err = loadStoreCheck(t, etcd)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", store.SchemaVersion+1)) ||
		!strings.Contains(err.Error(), "v99.0.0") {
		t.Fatalf("start on a newer store: %v", err)
	}
}

// TestStoreLooksWiped: a gateway that ran on a store with organizations
// says loudly, when it starts again, that the store holds no schema key
// and no organizations any more.
func TestStoreLooksWiped(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := store.New(etcd.Client(), "/tg")
	if _, err := s.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	log, err := loadStoreCheck(t, etcd)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, "tokengate ready")
	if strings.Contains(waitLog(t, log, "tokengate ready"), "looks wiped") {
		t.Fatal("a first start warned of a wiped store")
	}
	caddy.Stop()

	if _, err := etcd.Client().Delete(ctx, "/tg/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	log, err = loadStoreCheck(t, etcd)
	if err != nil {
		t.Fatal(err)
	}
	text := waitLog(t, log, "looks wiped")
	if !strings.Contains(text, `"level":"error"`) || strings.Count(text, "looks wiped") != 1 {
		t.Fatalf("want one error saying the store looks wiped:\n%s", text)
	}
}
