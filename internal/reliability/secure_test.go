package reliability

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/internal/etcdcluster"
	"github.com/tokengate/tokengate/module/store"
)

// TestThreeGatewaysOnASecureCluster is the operations guide's example:
// three gateways on a three-member etcd with TLS (client certificates
// required, peers too) and etcd authentication, as a user whose role
// reaches only /tokengate/. Each admits a token; a revocation on one is
// refused by all. Gateways with a wrong password, or without a client
// certificate, start all the same, within their bound, answer 503 and say
// why in their log.
func TestThreeGatewaysOnASecureCluster(t *testing.T) {
	c := etcdcluster.StartWith(t, etcdcluster.Options{Members: 3, Secure: true})
	sec := c.Security()
	tlsLines := []string{"tls_ca " + sec.CA, "tls_cert " + sec.ClientCert, "tls_key " + sec.ClientKey}
	good := append([]string{"username " + sec.Username, "password " + sec.Password}, tlsLines...)

	// The admin writes as the same etcd user, on its own client.
	tlsCfg, err := sec.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: tlsCfg, Username: sec.Username,
		Password: sec.Password, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const pfx = "/tokengate"
	w := store.New(cl, pfx)
	ctx := ctxT(t, 60*time.Second)
	if _, err := w.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	act, err := w.CreateAccount(ctx, store.Account{Org: "acme", Name: "prod"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	secret, nt := newToken(t)
	u, err := w.CreateUser(ctx, store.User{Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount,
		Account: act.ID, Role: store.RoleViewer, Name: "bot"}, &nt, operator)
	if err != nil {
		t.Fatal(err)
	}
	// The role reaches nothing outside the prefix.
	if _, err := cl.Put(ctx, "/elsewhere", "x"); err == nil {
		t.Fatal("tokengate's etcd user wrote outside its prefix")
	}

	upstream := EchoUpstream(t)
	hc := HTTPClient(t, 10*time.Second)
	var gws []*Gateway
	for i := range 3 {
		gws = append(gws, StartGateway(t, GatewayConfig{Name: fmt.Sprint("gw", i), Endpoints: c.Endpoints(),
			Prefix: pfx, Upstream: upstream, EtcdExtra: good}))
	}
	for _, g := range gws {
		if r := g.Do(context.Background(), hc, "check", secret); r.Status != http.StatusOK || r.UserID != u.ID {
			t.Fatalf("%s: %s", g.Name, r)
		}
	}
	if err := w.RevokeToken(ctx, "acme", u.ID, nt.Token.ID, operator); err != nil {
		t.Fatal(err)
	}
	f := &fixture{hc: hc}
	for _, g := range gws {
		if _, ok := f.waitUntil(g, secret, 5*time.Second, refused); !ok {
			t.Fatalf("%s still admits the revoked token", g.Name)
		}
	}

	// What an operator sees when the credentials are wrong: the start
	// fails at once (within dial_timeout), naming the endpoints and why.
	for _, bad := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"wrong password", append([]string{"username " + sec.Username, "password nope"}, tlsLines...),
			[]string{"connecting to etcd at " + c.Endpoints()[0], "authentication failed"}},
		{"no client certificate", []string{"username " + sec.Username, "password " + sec.Password, "tls_ca " + sec.CA},
			[]string{"connecting to etcd at " + c.Endpoints()[0], "within dial_timeout 2s", "tls_cert"}},
	} {
		t.Run(bad.name, func(t *testing.T) {
			start := time.Now()
			// Caddy may start serving before the tokengate app fails to
			// start: wait for the process to end, however it went.
			g, err := startGateway(t, Binary(t), t.TempDir(), GatewayConfig{Name: "bad", Endpoints: c.Endpoints(),
				Prefix: pfx, Upstream: upstream, EtcdExtra: bad.extra}, 30*time.Second)
			if g == nil {
				t.Fatalf("starting: %v", err)
			}
			for g.proc.Running() {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("the gateway keeps running with %s", bad.name)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(start)
			words := g.proc.LogTail(40)
			for _, w := range bad.want {
				if !strings.Contains(words, w) {
					t.Errorf("its last words do not say %q:\n%s", w, words)
				}
			}
			if took > 10*time.Second {
				t.Errorf("it took %s to give up", took)
			}
			t.Logf("%s: refused after %s", bad.name, took.Round(time.Millisecond))
		})
	}
}
