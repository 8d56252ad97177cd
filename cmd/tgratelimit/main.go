// Command tgratelimit measures one user's rate limit shared by two gateways:
// how close to the budget the two admit together when one of them takes
// nearly all of the user's traffic, whether a light client on the other
// still gets through, and what sharing costs in etcd writes.
//
//	go run ./cmd/tgratelimit [-windows 10] [-etcd http://10.0.0.1:2379,…]
//
// Without -etcd it starts an embedded etcd of its own. A and B are real
// tokengate processes (this program, run again as Caddy) in front of an
// upstream in this process that counts, by 1 s window, the requests each
// gateway let through. The user's budget is 100 requests a second; A is
// hammered by 8 connections in closed loop, B serves a light client of the
// same user at 10 requests a second. Two windows pass before counting, for
// the gateways to learn each other's demand.
package main

import "github.com/tokengate/tokengate/internal/measure"

// tool is tgratelimit's command line.
var tool = measure.Tool[*result]{Name: "tgratelimit", Measure: run,
	Count: "windows", CountDefault: 10, CountUsage: "1 s windows to count",
	TimeoutUsage: "longest to wait for one request"}

func main() { tool.Main() }
