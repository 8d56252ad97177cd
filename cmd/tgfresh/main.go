// Command tgfresh measures freshness across gateway instances: how long
// after a token is revoked through instance A another instance, B, sharing
// the same etcd, refuses it.
//
//	go run ./cmd/tgfresh [-tokens 200] [-etcd http://10.0.0.1:2379,…]
//
// Without -etcd it starts an embedded etcd of its own. A and B are real
// tokengate processes (this program, run again as Caddy). For each token:
// B has it cached, A's admin API revokes it, and B is asked again and again
// until it answers 401; the delay counts from A's answer to the revocation
// (A answers once the change is committed and applied by its own cache).
package main

import "github.com/tokengate/tokengate/internal/measure"

// tool is tgfresh's command line.
var tool = measure.Tool[*result]{Name: "tgfresh", Measure: run,
	Count: "tokens", CountDefault: 200, CountUsage: "tokens to revoke, one after the other",
	TimeoutUsage: "longest to wait for B to refuse one token"}

func main() { tool.Main() }
