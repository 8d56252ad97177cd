package tokengate

import (
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkHandlerCachedMinimalHeaders is BenchmarkHandlerCached with
// identity_headers user-id user-type: the handler's share of what the
// minimal set saves (the rest is the proxy's and the upstream's).
func BenchmarkHandlerCachedMinimalHeaders(b *testing.B) {
	h, secret := benchHandler(b)
	h.IdentityHeaders = []string{string(HeaderUserID), string(HeaderUserType)}
	if err := h.settle(); err != nil {
		b.Fatal(err)
	}
	h.use(h.verifiers, DefaultHeaderPrefix)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	benchRequest(b, secret, func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if r.Header.Get("X-Tokengate-User-Type") != "programmatic" || r.Header.Get("X-Tokengate-Role") != "" {
			b.Fatalf("tagged wrongly: %v", r.Header)
		}
	})
}
