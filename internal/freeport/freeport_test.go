package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestPick(t *testing.T) {
	ports, err := Pick(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < lowest || p >= ephemeralLow() || seen[p] {
			t.Fatalf("port %d: outside %d–%d or picked twice (%v)", p, lowest, ephemeralLow()-1, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d cannot be bound: %v", p, err)
		}
		l.Close()
	}
}
