package tokengate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/webhook"
)

// stopBound is the longest a stop or a reload may take whatever etcd
// does (the README's figure).
const stopBound = 6 * time.Second

// TestStopAndReloadWithTheStoreGone: a gateway that follows in the webhook
// election (another instance leads) stops, and reloads onto a live etcd,
// within the bound after its etcd has gone.
func TestStopAndReloadWithTheStoreGone(t *testing.T) {
	for _, then := range []string{"reload to a new etcd", "stop"} {
		t.Run(then, func(t *testing.T) {
			old := etcdtest.Start(t)
			// Another instance leads the webhook election.
			leader, err := webhook.New(store.New(old.Client(), "/tg"), webhook.Config{LeaderTTL: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			leader.Start()
			t.Cleanup(leader.Close)
			webhooktest.WaitFor(t, "the other instance leads", 10*time.Second, leader.Leading)

			port := caddytest.FreePort(t)
			caddytest.Load(t, storeCheckCaddyfile, map[string]string{"ETCD": old.Endpoint(), "LOG": t.TempDir() + "/caddy.log",
				"PORT": fmt.Sprint(port)})
			app := activeApp(t)
			webhooktest.WaitFor(t, "the gateway campaigns", 10*time.Second, func() bool {
				return app.Verifier().Reachable()
			})
			old.Stop()
			defer old.Restart()

			start := time.Now()
			switch then {
			case "stop":
				if err := caddy.Stop(); err != nil {
					t.Fatal(err)
				}
			default:
				fresh := etcdtest.Start(t)
				cfg := caddytest.Adapt(t, storeCheckCaddyfile, map[string]string{"ETCD": fresh.Endpoint(),
					"LOG": t.TempDir() + "/caddy.log", "PORT": fmt.Sprint(port)})
				if err := caddy.Load(cfg, true); err != nil {
					t.Fatal(err)
				}
			}
			took := time.Since(start)
			t.Logf("%s with the store gone: %s", then, took.Round(time.Millisecond))
			if took > stopBound {
				t.Fatalf("%s took %s, past %s", then, took, stopBound)
			}
		})
	}
}
