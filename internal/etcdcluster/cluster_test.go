package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestFaults checks that each fault the harness offers is real and that
// the cluster comes back from it with its data.
func TestFaults(t *testing.T) {
	c := Start(t, 3)
	if len(c.Endpoints()) != 3 {
		t.Fatalf("endpoints = %v", c.Endpoints())
	}
	ctx := ctxT(t, 60*time.Second)
	cl := c.Client()
	if _, err := cl.Put(ctx, "k", "v0"); err != nil {
		t.Fatal(err)
	}

	c.MakeLeader(2, 10*time.Second)
	leader := c.Leader(5 * time.Second)
	if leader != 2 {
		t.Fatalf("leader is %d after handing leadership to 2", leader)
	}
	pid := c.Member(leader).proc.Pid()
	c.Kill(leader)
	if c.Member(leader).proc.Running() {
		t.Fatal("killed member still running")
	}
	// The two others elect a leader and take writes.
	others := []int{(leader + 1) % 3, (leader + 2) % 3}
	survivors := c.ClientOf(others...)
	putWithin(t, survivors, "k", "v1", 10*time.Second)

	c.Restart(leader)
	if c.Member(leader).proc.Pid() == pid {
		t.Fatal("restart kept the old process")
	}
	c.WaitHealthy(20 * time.Second)
	// The restarted member has the write it missed.
	back := c.ClientOf(leader)
	if resp, err := back.Get(ctx, "k"); err != nil || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("restarted member reads %v, %v", resp, err)
	}

	// A paused member answers nothing, but its peers go on.
	c.Pause(0)
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := c.ClientOf(0).Get(pctx, "k")
	cancel()
	if err == nil {
		t.Fatal("paused member answered")
	}
	putWithin(t, c.ClientOf(1, 2), "k", "v2", 10*time.Second)
	c.Resume(0)
	c.WaitHealthy(20 * time.Second)

	// After compaction, history before it is gone for watchers.
	before, err := cl.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		putWithin(t, cl, "k", fmt.Sprint("v", 3+i), 5*time.Second)
	}
	rev := c.Compact(ctx)
	if rev <= before.Header.Revision {
		t.Fatalf("compacted at %d, before %d", rev, before.Header.Revision)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wr := <-cl.Watch(wctx, "k", clientv3.WithRev(before.Header.Revision))
	if !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("watch from a compacted revision: %v", wr.Err())
	}
}

// TestAllDownAndBack checks that a cluster whose members all died comes
// back with its data once they restart.
func TestAllDownAndBack(t *testing.T) {
	c := Start(t, 3)
	ctx := ctxT(t, 60*time.Second)
	if _, err := c.Client().Put(ctx, "k", "kept"); err != nil {
		t.Fatal(err)
	}
	for i := range c.Size() {
		c.Kill(i)
	}
	for i := range c.Size() {
		c.Restart(i)
	}
	c.WaitHealthy(30 * time.Second)
	resp, err := c.Client().Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("after restart: %v, %v", resp, err)
	}
}

// putWithin retries a put until it succeeds: the cluster may be electing.
func putWithin(t *testing.T, cl *clientv3.Client, k, v string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cl.Put(ctx, k, v)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s=%s: %v", k, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
