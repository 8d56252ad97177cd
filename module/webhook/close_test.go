package webhook

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/internal/webhooktest"
)

// TestCloseIsBoundedWhileEtcdIsDown: with etcd gone, an engine waiting in
// the election (a follower) and one leading both close within the bound.
// (etcd's Election.Campaign, cancelled, resigns with the client's own
// context, which never ends while the client is open.)
func TestCloseIsBoundedWhileEtcdIsDown(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.engine(fast())
	webhooktest.WaitFor(t, "a leader", 10*time.Second, leader.Leading)
	follower, _ := e.engine(fast())
	webhooktest.WaitFor(t, "the follower campaigns", 10*time.Second, func() bool {
		resp, err := e.etcd.Client().Get(e.ctx(), e.store.WebhookLeaderPrefix(), clientv3WithPrefixCount()...)
		return err == nil && resp.Count == 2
	})
	e.etcd.Stop()
	defer e.etcd.Restart()
	for name, eng := range map[string]*Engine{"follower": follower, "leader": leader} {
		start := time.Now()
		eng.Close()
		if took := time.Since(start); took > closeBound+2*time.Second {
			t.Errorf("the %s closed after %s", name, took)
		} else {
			t.Logf("the %s closed in %s", name, took.Round(time.Millisecond))
		}
	}
}

func clientv3WithPrefixCount() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}
}
