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

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

// instanceEnv set means: run as a tokengate instance (Caddy), not as the
// measuring tool.
const instanceEnv = "TGWEBHOOK_INSTANCE"

func main() {
	if os.Getenv(instanceEnv) != "" {
		caddycmd.Main()
		return
	}
	events := flag.Int("events", 500, "events to write and wait for, one after the other")
	endpoints := flag.String("etcd", "", "etcd client URLs, comma-separated (default: an embedded etcd)")
	timeout := flag.Duration("timeout", 10*time.Second, "longest to wait for one delivery")
	flag.Parse()
	if *events < 1 {
		fmt.Fprintln(os.Stderr, "tgwebhook: -events must be at least 1")
		os.Exit(2)
	}
	var eps []string
	if *endpoints != "" {
		eps = strings.Split(*endpoints, ",")
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	res, err := run(config{events: *events, endpoints: eps, timeout: *timeout, self: []string{exe}, log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tgwebhook:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	if res.lost > 0 || res.badSignatures > 0 {
		os.Exit(1)
	}
}
