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
const instanceEnv = "TGFRESH_INSTANCE"

func main() {
	if os.Getenv(instanceEnv) != "" {
		caddycmd.Main()
		return
	}
	tokens := flag.Int("tokens", 200, "tokens to revoke, one after the other")
	endpoints := flag.String("etcd", "", "etcd client URLs, comma-separated (default: an embedded etcd)")
	timeout := flag.Duration("timeout", 10*time.Second, "longest to wait for B to refuse one token")
	flag.Parse()
	if *tokens < 1 {
		fmt.Fprintln(os.Stderr, "tgfresh: -tokens must be at least 1")
		os.Exit(2)
	}
	var eps []string
	if *endpoints != "" {
		eps = strings.Split(*endpoints, ",")
	}
	res, err := run(config{tokens: *tokens, endpoints: eps, timeout: *timeout, self: selfCommand(), log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tgfresh:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	if res.admitted > 0 || res.timedOut > 0 {
		os.Exit(1)
	}
}

// selfCommand runs this program as a tokengate instance.
func selfCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}
