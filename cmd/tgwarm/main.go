// Command tgwarm measures a gateway restarted under steady load: requests/s
// and p99 latency in each of the first ten seconds after it is ready again,
// against the steady state just before the restart, with warm_start off and
// on in turn (off, on, off, on), on one etcd.
//
//	go run ./cmd/tgwarm [-tokens 100000] [-etcd http://127.0.0.1:2379] [-timeout 30s]
//
// Without -etcd it starts an embedded etcd in its own process. The gateway
// is a real tokengate process (this program, run again as Caddy) with
// cache_entries twice -tokens; its site answers 200 behind `tokengate api`.
// The tokens are those of as many account-level viewers, written in bulk
// (store.Import). 32 keep-alive connections request them in closed loop:
// each token once in turn at first (the cache fills), then at random. Once
// the gateway has recorded every token's use in etcd, five seconds are
// measured as the steady state; the gateway is stopped (SIGTERM) and started
// again with the next warm_start, and the ten seconds after it is ready are
// measured second by second. Requests that fail while it is down are
// counted apart. Beside each restart: how long from SIGTERM to ready, cache
// misses and etcd lookup requests per 1000 requests in those ten seconds
// (warming's included), and what the gateway's log says of its warming.
//
// The goal it checks: from the fifth second on, throughput at least 0.9 of
// the steady state and p99 at most twice the steady p99, with warm_start on.
package main

import "github.com/tokengate/tokengate/internal/measure"

// tool is tgwarm's command line.
var tool = measure.Tool[*result]{Name: "tgwarm", Measure: run,
	Count: "tokens", CountDefault: 100_000, CountUsage: "active tokens, a user's each, requested uniformly at random",
	TimeoutUsage: "longest to wait for the gateway to record every token's use (at least 30s)"}

func main() { tool.Main() }
