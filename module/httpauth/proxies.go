package httpauth

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Behind trusted proxies, Caddy takes the client's address from
// X-Forwarded-For (or the server's client_ip_headers). Without
// trusted_proxies_strict it takes the leftmost address there, which the
// client writes itself, so a user's allowed_cidrs becomes the client's
// choice. Caddy keeps no exported trace of a server's trusted_proxies
// once loaded, so the warning comes with the first request that shows
// it: a user with allowed_cidrs judged on an address a trusted proxy gave,
// on a server without strict mode. Once per server name in a process.

// laxServers holds the names of the servers already warned about.
var laxServers sync.Map // server name → struct{}

// warnLaxProxies logs, once per server, that the client address judged
// for r came from a trusted proxy's header read leftmost first.
func warnLaxProxies(r *http.Request) {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	if !trusted {
		return
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.TrustedProxiesStrict > 0 {
		return
	}
	if _, warned := laxServers.LoadOrStore(srv.Name(), struct{}{}); warned {
		return
	}
	caddy.Log().Named("tokengate").Warn("a server trusts proxies without trusted_proxies_strict: "+
		"the client address allowed_cidrs judges is the leftmost X-Forwarded-For entry, which the client chooses; "+
		"set trusted_proxies_strict in the server's options",
		zap.String("server", srv.Name()))
}
