package httpauth

import (
	"net/http"
	"net/netip"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/module/verify"
)

// A user's allowed_cidrs (docs/admin-api.md) are judged against the client
// address Caddy determined for the request, the one its remote_ip and
// client_ip matchers and its access log use: the connection's peer, or,
// when the peer is one of the server's trusted_proxies, the address its
// client_ip_headers (default X-Forwarded-For) name. Headers from any other
// peer are never read, so a client cannot claim another address.

// ClientIP is the client address Caddy determined for r; the zero Addr when
// it knows none (no Caddy server, a Unix socket without trusted proxies).
func ClientIP(r *http.Request) netip.Addr {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return addr
}

// ClientIPRefusal is the one rule of allowed_cidrs, for the gateway and
// tokengate_admin alike: "" when the identity may be used from the request's
// client address, else why not (the message of 403 ip_forbidden). Users
// without a list cost one comparison.
func ClientIPRefusal(r *http.Request, id *verify.Identity) string {
	if !id.RestrictsIP() {
		return ""
	}
	// Before the TLS handshake completes (QUIC 0-RTT early data) the peer
	// address is unproven, and Caddy's own matchers refuse to judge it.
	if r.TLS != nil && !r.TLS.HandshakeComplete {
		return "the client address cannot be verified before the TLS handshake completes: send the request again"
	}
	addr := ClientIP(r)
	warnLaxProxies(r)
	switch {
	case !addr.IsValid():
		return "this token may be used only from its user's allowed networks, and the client address is unknown"
	case !id.AdmitsIP(addr):
		return "this token may not be used from " + addr.String() + ": it is outside the user's allowed networks"
	}
	return ""
}
