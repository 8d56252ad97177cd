// Command tgwebhook measures webhook delivery latency: how long after an
// audit event is written its webhook delivery reaches a receiver.
//
//	go run ./cmd/tgwebhook [-events 500] [-etcd http://10.0.0.1:2379,…]
//
// Without -etcd it starts an embedded etcd of its own. The gateway is a
// real tokengate process (this program, run again as Caddy) with
// webhook_allow_private; the receiver runs in this program on loopback and
// checks every signature. One at a time, an account is created through
// the gateway's admin API (one audit event, account.create) and the tool
// waits for its delivery; the latency runs from the event's time (taken
// in the transaction that writes it) to the receiver reading the request.
package main

import "github.com/tokengate/tokengate/internal/measure"

// tool is tgwebhook's command line.
var tool = measure.Tool[*result]{Name: "tgwebhook", Measure: run,
	Count: "events", CountDefault: 500, CountUsage: "events to write and wait for, one after the other",
	TimeoutUsage: "longest to wait for one delivery"}

func main() { tool.Main() }
