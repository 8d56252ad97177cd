package tokengate_test

import (
	"os"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

const proxiesCaddyfile = `{
	admin off
	persist_config off
	log {
		output file {{LOG}}
		format json
	}
	servers :{{PORT}} {
		name lax
		trusted_proxies static 127.0.0.1/32
	}
	servers :{{PORT2}} {
		name strict
		trusted_proxies static 127.0.0.1/32
		trusted_proxies_strict
	}
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
}

http://127.0.0.1:{{PORT}}, http://127.0.0.1:{{PORT2}} {
	route /api/* {
		tokengate api
		reverse_proxy {{UPSTREAM}}
	}
}
`

// TestWarnsOfTrustedProxiesWithoutStrict: behind trusted proxies without
// trusted_proxies_strict, the leftmost X-Forwarded-For entry — the
// client's own — is the address allowed_cidrs judges. The operator is
// told once, naming the server, when that first happens; a strict server
// judges the rightmost untrusted entry and is not named.
func TestWarnsOfTrustedProxiesWithoutStrict(t *testing.T) {
	g := startGatewayWith(t, proxiesCaddyfile)
	_, tok := g.user(func(u *store.User) { u.AllowedCIDRs = []string{"192.0.2.0/24"} })
	g.synced()
	const xff = "192.0.2.7, 198.51.100.1"

	// The strict server reads the entry its trusted proxy wrote.
	g.base, g.lenient = g.lenient, g.base
	g.do("GET", "/api/x", tok, "X-Forwarded-For", xff).want(t, 403, "ip_forbidden")
	// The lax one reads the client's own entry: what the warning is about.
	g.base, g.lenient = g.lenient, g.base
	for range 2 {
		g.do("GET", "/api/x", tok, "X-Forwarded-For", xff).want(t, 200, "")
	}

	b, err := os.ReadFile(g.logFile)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "trusted_proxies_strict") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"server":"lax"`) || !strings.Contains(warnings[0], `"level":"warn"`) {
		t.Fatalf("want one warning naming the lax server, got %d:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
}
