// Package freeport picks loopback ports for servers a test starts later:
// ports below the kernel's ephemeral range, so that no outgoing
// connection of any process on the machine takes one between the pick and
// the bind. (Asking the kernel for port 0 gives a port inside that range,
// which the many connections of tests running side by side soon reuse.)
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port picked from.
const lowest = 10000

// Pick returns n distinct loopback ports that were free a moment ago. All
// are held until every one is chosen. Another listener may still take one
// before it is used: callers that bind them detect that and pick again.
func Pick(n int) ([]int, error) {
	high := ephemeralLow()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt > 1000 {
			return nil, fmt.Errorf("no free port in %d–%d", lowest, high-1)
		}
		port := lowest + rand.IntN(high-lowest)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default, 32768, where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, err := strconv.Atoi(f[0]); err == nil && low > lowest+1000 {
				return low
			}
		}
	}
	return 32768
}
