package tokengate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/store"
)

// appConfig is a Caddy JSON config with only the tokengate app, its admin
// endpoint off (no fixed ports), keeping the embedded etcd in dir.
func appConfig(t *testing.T, dir string, extra string) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{
		"admin": {"disabled": true},
		"logging": {"logs": {"default": {"level": "ERROR"}}},
		"apps": {"tokengate": {"embedded_dir": %q %s}}
	}`, dir, extra)
}

func load(t *testing.T, cfg []byte) {
	t.Helper()
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
}

func activeApp(t *testing.T) *App {
	t.Helper()
	ctx := caddy.ActiveContext()
	app, err := ctx.App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*App)
}

// syncWatch waits until the app's cache has applied every change so far.
func syncWatch(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := a.Conn().Client.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verifier().WaitForRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
}

func stopCaddy(t *testing.T) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
}

// waitGoroutines waits until at most want goroutines run, or fails after a
// deadline with a dump of what is left.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, want, buf)
		}
		runtime.Gosched()
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestReloadKeepsEmbeddedEtcd: reloading the same config 20 times keeps one
// embedded etcd and one cache, and leaks no goroutine; stopping Caddy
// closes them.
func TestReloadKeepsEmbeddedEtcd(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	cfg := appConfig(t, dir, "")
	load(t, cfg)
	first := activeApp(t)
	emb, verifier := first.Conn().Embedded(), first.Verifier()
	if emb == nil {
		t.Fatal("no embedded etcd")
	}
	sock, err := url.Parse(emb.ClientURL())
	if err != nil || sock.Scheme != "unix" {
		t.Fatalf("embedded etcd at %s, want a unix socket", emb.ClientURL())
	}
	// Baseline once the watch and its streams are up: a write, then the
	// watch having applied it.
	if _, err := first.Store().CreateOrg(context.Background(), store.Org{ID: "warmup", Name: "x"}, store.Actor{ID: "t", Type: store.ActorOperator}); err != nil {
		t.Fatal(err)
	}
	syncWatch(t, first)
	// The rate limiter's lease and its keep-alive streams are up too.
	deadline := time.Now().Add(10 * time.Second)
	for !first.Limiter().Stats().Registered {
		if time.Now().After(deadline) {
			t.Fatal("the rate limiter did not register")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And the webhook engine leads, its term's goroutines running.
	run, err := first.Running()
	if err != nil {
		t.Fatal(err)
	}
	for !run.Webhooks.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the webhook engine did not lead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	baseline := runtime.NumGoroutine()
	for i := range 20 {
		load(t, cfg)
		app := activeApp(t)
		if app.Conn().Embedded() != emb || app.Verifier() != verifier {
			t.Fatalf("reload %d opened a new etcd or cache", i)
		}
		// The store keeps answering through every reload.
		if _, err := app.Store().CreateOrg(context.Background(), store.Org{ID: fmt.Sprint("org", i), Name: "x"}, store.Actor{ID: "t", Type: store.ActorOperator}); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	if n, _ := resources.References(activeApp(t).connKey); n != 1 {
		t.Fatalf("connection held %d times after reloads, want 1", n)
	}
	waitGoroutines(t, baseline+2)

	stopCaddy(t)
	if _, err := net.DialTimeout("unix", sock.Path, time.Second); err == nil {
		t.Fatal("embedded etcd still listening after Caddy stopped")
	}
	waitGoroutines(t, before+2)
}

// TestSettingsChangeKeepsConnection: a reload with other cache settings gets
// a new cache on the same etcd, and the old cache is closed.
func TestSettingsChangeKeepsConnection(t *testing.T) {
	dir := t.TempDir()
	load(t, appConfig(t, dir, ""))
	first := activeApp(t)
	conn, oldVerifier := first.Conn(), first.Verifier()
	load(t, appConfig(t, dir, `, "cache_ttl": "2m", "max_stale": "30s"`))
	second := activeApp(t)
	if second.Conn() != conn {
		t.Fatal("changing cache settings reopened etcd")
	}
	if second.Verifier() == oldVerifier {
		t.Fatal("changed cache settings did not take effect")
	}
	if got := second.Verifier().Config().CacheTTL; got != 2*time.Minute {
		t.Fatalf("cache_ttl = %s", got)
	}
	if _, held := resources.References(first.verifierKey); held {
		t.Fatal("the old cache is still held")
	}
	stopCaddy(t)
}

// TestEmbeddedDataSurvivesRestart: stop Caddy, start it again on the same
// directory: the data is there.
func TestEmbeddedDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	load(t, appConfig(t, dir, ""))
	if _, err := activeApp(t).Store().CreateOrg(context.Background(), store.Org{ID: "acme", Name: "Acme"}, store.Actor{ID: "t", Type: store.ActorOperator}); err != nil {
		t.Fatal(err)
	}
	stopCaddy(t)
	load(t, appConfig(t, dir, ""))
	o, err := activeApp(t).Store().GetOrg(context.Background(), "acme")
	if err != nil || o.Name != "Acme" {
		t.Fatalf("after restart: %+v, %v", o, err)
	}
	stopCaddy(t)
}

func TestAppConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ extra, want string }{
		{`, "header_prefix": "X-Auth"`, "end with '-'"},
		{`, "header_prefix": "X Bad-"`, "only letters"},
		{`, "header_prefix": "X-Auth-"`, "not tokengate's"},
		{`, "header_prefix": "Content-"`, "not tokengate's"},
		{`, "header_prefix": "x-forwarded-"`, "not tokengate's"},
		{`, "header_prefix": "X-Account-"`, "not tokengate's"},
		{`, "header_prefix": "X-Http-Method-"`, "not tokengate's"},
		{`, "cache_entries": -5`, "cache_entries"},
		{`, "cache_entries": 99999999999999`, "at most"},
		{`, "report_limit": "60"`, "report_limit"},
		{`, "report_limit": "0/1h"`, "report_limit"},
		{`, "report_limit": "60/0s"`, "report_limit"},
		{`, "max_stale": "10m"`, "max_stale"},
		{`, "warm_start": "no"`, "warm_start"},
		{`, "audit_retention": "1s"`, "at least 1h"},
		{`, "usage_retention": "1h"`, "at least 24h"},
		{`, "etcd": {"endpoints": ["http://127.0.0.1:1"]}`, "embedded_dir is the embedded etcd's"},
	} {
		err := caddy.Load(appConfig(t, dir, c.extra), true)
		if err == nil {
			stopCaddy(t)
			t.Errorf("config with %s accepted", c.extra)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("config with %s: %v, want an error about %q", c.extra, err, c.want)
		}
	}
	for _, c := range []struct{ etcd, want string }{
		{`{"endpoints": []}`, "endpoints is required"},
		{`{"endpoints": ["10.0.0.1:2379"]}`, "want http://host:port"},
		{`{"endpoints": ["http://127.0.0.1:1"], "tls_cert": "/nonexistent", "tls_key": "/nonexistent"}`, "nonexistent"},
		{`{"endpoints": ["http://127.0.0.1:1"], "prefix": "{env.TG_TEST_UNSET}"}`, "comes out empty"},
		{`{"endpoints": ["http://root:pw@127.0.0.1:1"]}`, "credentials go in username and password"},
	} {
		cfg := []byte(`{"admin": {"disabled": true}, "logging": {"logs": {"default": {"level": "ERROR"}}}, "apps": {"tokengate": {"etcd": ` + c.etcd + `}}}`)
		err := caddy.Load(cfg, true)
		if err == nil {
			stopCaddy(t)
			t.Errorf("etcd %s accepted", c.etcd)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("etcd %s: %v, want an error about %q", c.etcd, err, c.want)
		}
	}
	// Nothing is left held after failed loads.
	if n, held := resources.References("embedded:" + dir); held {
		t.Fatalf("embedded etcd held %d times after failed loads", n)
	}
}

// TestJSONRoundTrip: the app's JSON names are the contract's.
func TestJSONRoundTrip(t *testing.T) {
	in := `{"etcd":{"endpoints":["https://10.0.0.1:2379"],"prefix":"/tg","username":"u","password":"{env.P}","tls_ca":"ca.pem","tls_cert":"c.pem","tls_key":"k.pem","dial_timeout":5000000000},"embedded_dir":"/d","cache_entries":10,"cache_ttl":300000000000,"negative_ttl":10000000000,"max_stale":60000000000,"header_prefix":"X-Tokengate-","report_limit":"60/1h","warm_start":"off"}`
	var a App
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(a)
	if string(out) != in {
		t.Fatalf("round trip:\n got %s\nwant %s", out, in)
	}
}
