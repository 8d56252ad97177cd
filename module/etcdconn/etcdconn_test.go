package etcdconn

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// TestDirInUse: a second embedded etcd on the same directory fails at once
// with a clear message, instead of hanging on etcd's own lock.
func TestDirInUse(t *testing.T) {
	dir := t.TempDir()
	first, err := StartEmbedded(EmbeddedConfig{Dir: dir, NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	start := time.Now()
	_, err = StartEmbedded(EmbeddedConfig{Dir: dir, NoFsync: true}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second start: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("refusal took %s", time.Since(start))
	}
	first.Close()
	again, err := StartEmbedded(EmbeddedConfig{Dir: dir, NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatalf("start after close: %v", err)
	}
	again.Close()
}

func TestConfigResolve(t *testing.T) {
	t.Setenv("TG_TEST_PASSWORD", "s3cret")
	good := Config{Endpoints: []string{"http://127.0.0.1:2379"}, Username: "u", Password: "{env.TG_TEST_PASSWORD}", Prefix: "tg/"}
	r, err := good.resolve(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if r.password != "s3cret" || r.prefix != "/tg" || r.dialTimeout != DefaultDialTimeout {
		t.Fatalf("resolved %+v", r)
	}
	for name, c := range map[string]Config{
		"no endpoints":      {},
		"no scheme":         {Endpoints: []string{"10.0.0.1:2379"}},
		"unix scheme":       {Endpoints: []string{"unix:///x"}},
		"cert without key":  {Endpoints: []string{"https://h:1"}, TLSCert: "c.pem"},
		"user without pass": {Endpoints: []string{"http://h:1"}, Username: "u"},
		"negative timeout":  {Endpoints: []string{"http://h:1"}, DialTimeout: -1},
		"prefix with a NUL": {Endpoints: []string{"http://h:1"}, Prefix: "/a\x00b"},
	} {
		if _, err := c.resolve(caddy.NewReplacer()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
