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
	"github.com/tokengate/tokengate/module/token"
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

// TestStoreUpgradesToSchema3: a gateway started on a store at schema 2
// leaves it there and says so; the operator's upgrade moves it to 3 and
// rewrites the copies under the tokens' digests, which a gateway of
// version 2 left out.
func TestStoreUpgradesToSchema3(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := store.New(etcd.Client(), "/tg")
	if _, err := s.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	act, err := s.CreateAccount(ctx, store.Account{Org: "acme", Name: "prod"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		t.Fatal(err)
	}
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
	u, err := s.CreateUser(ctx, store.User{Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount,
		Account: act.ID, Role: store.RoleViewer, Name: "bot"}, &nt, operator)
	if err != nil {
		t.Fatal(err)
	}
	// As a gateway of schema 2 leaves the store: the version, and the
	// digest's key without a copy.
	refKey := "/tg/tokens/" + nt.Token.Hash
	resp, err := etcd.Client().Get(ctx, refKey)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("digest key: %v %v", resp, err)
	}
	var ref map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &ref); err != nil {
		t.Fatal(err)
	}
	delete(ref, "copy")
	bare, _ := json.Marshal(ref)
	v2, _ := json.Marshal(store.Schema{Version: 2, WrittenBy: "tokengate v0.2.0"})
	if _, err := etcd.Client().Txn(ctx).Then(clientv3.OpPut(refKey, string(bare)), clientv3.OpPut("/tg/schema", string(v2))).Commit(); err != nil {
		t.Fatal(err)
	}

	log, err := loadStoreCheck(t, etcd)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, "store schema older than this gateway's")
	if resp, err := etcd.Client().Get(ctx, "/tg/schema"); err != nil || !strings.Contains(string(resp.Kvs[0].Value), `"version":2`) {
		t.Fatalf("the store moved on by itself: %v %v", resp, err)
	}
	// The operator's `tokengate store upgrade`.
	if res, err := s.Upgrade(ctx); err != nil || !res.Upgraded || res.Copies != 1 {
		t.Fatalf("upgrade: %+v %v", res, err)
	}
	resp, err = etcd.Client().Get(ctx, "/tg/schema")
	var sc store.Schema
	if err != nil || len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &sc) != nil || sc.Version != 3 {
		t.Fatalf("schema after the upgrade: %v %v", resp, err)
	}
	resp, err = etcd.Client().Get(ctx, refKey)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("digest key after the upgrade: %v %v", resp, err)
	}
	var copied struct {
		Copy *struct {
			Token store.Token `json:"token"`
			User  store.User  `json:"user"`
		} `json:"copy"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &copied); err != nil || copied.Copy == nil ||
		copied.Copy.User.ID != u.ID || copied.Copy.Token.ID != nt.Token.ID {
		t.Fatalf("digest key after the upgrade: %s %v", resp.Kvs[0].Value, err)
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
