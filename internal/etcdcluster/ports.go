package etcdcluster

import (
	"net"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/freeport"
)

// FreePorts returns n distinct loopback ports that were free a moment ago,
// below the ephemeral range (internal/freeport); another process may still
// take one before it is used, which the callers that bind them detect and
// retry.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.Pick(n)
	if err != nil {
		t.Fatalf("finding free ports: %v", err)
	}
	return ports
}

// waitPortFree waits until addr can be bound, for a restart on the port a
// killed process held.
func waitPortFree(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening reports whether something accepts connections on addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
