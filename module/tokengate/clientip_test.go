package tokengate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
)

// requestFrom is a request as Caddy hands it to handlers, with the client
// address Caddy determined (clientIP; nil: no vars at all, as without a
// Caddy server).
func requestFrom(clientIP any, secret string, state *tls.ConnectionState) *http.Request {
	r := httptest.NewRequest("GET", "/api/clusters", nil)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	if clientIP != nil {
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: clientIP})
	}
	r = r.WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+secret)
	r.TLS = state
	return r
}

// TestClientIPRefusal: what the handler does with the client address Caddy
// gives it, including none and one not yet proven (0-RTT early data).
func TestClientIPRefusal(t *testing.T) {
	limited, limitedTok := testHandler(t, func(u *store.User) { u.AllowedCIDRs = []string{"10.0.0.0/8", "2001:db8::/32"} })
	open, openTok := testHandler(t, nil)
	early := &tls.ConnectionState{HandshakeComplete: false}
	done := &tls.ConnectionState{HandshakeComplete: true}
	tests := []struct {
		name     string
		h        *Handler
		tok      string
		clientIP any
		tls      *tls.ConnectionState
		status   int
		message  string
	}{
		{"inside", limited, limitedTok, "10.1.2.3", nil, 200, ""},
		{"inside, over TLS", limited, limitedTok, "10.1.2.3", done, 200, ""},
		{"inside, IPv4-mapped", limited, limitedTok, "::ffff:10.1.2.3", nil, 200, ""},
		{"inside, IPv6", limited, limitedTok, "2001:db8::7", nil, 200, ""},
		{"outside", limited, limitedTok, "192.0.2.1", nil, 403, "192.0.2.1"},
		{"early data", limited, limitedTok, "10.1.2.3", early, 403, "handshake"},
		{"no address known", limited, limitedTok, "", nil, 403, "unknown"},
		{"a Unix socket", limited, limitedTok, "@", nil, 403, "unknown"},
		{"no vars", limited, limitedTok, nil, nil, 403, "unknown"},
		{"not a string", limited, limitedTok, 42, nil, 403, "unknown"},
		{"no list, no address", open, openTok, "", nil, 200, ""},
		{"no list, early data", open, openTok, "192.0.2.1", early, 200, ""},
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if err := tt.h.ServeHTTP(w, requestFrom(tt.clientIP, tt.tok, tt.tls), next); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status == 200 {
				return
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "ip_forbidden" || !strings.Contains(body.Error.Message, tt.message) {
				t.Fatalf("body %s, want ip_forbidden naming %q", w.Body, tt.message)
			}
		})
	}
}

// TestClientIPRefusalDoesNotAllocate: judging the client address costs no
// allocation, with or without a list, when the request is admitted.
func TestClientIPRefusalDoesNotAllocate(t *testing.T) {
	limited, limitedTok := testHandler(t, func(u *store.User) { u.AllowedCIDRs = []string{"192.0.2.0/24", "10.0.0.0/8"} })
	id, err := limited.verifiers.VerifierContext(context.Background()).Verify(context.Background(), limitedTok)
	if err != nil {
		t.Fatal(err)
	}
	openID := &verify.Identity{UserID: "u-000000000000"} // no list
	r := requestFrom("10.1.2.3", limitedTok, nil)
	for name, judged := range map[string]func() string{
		"with a list":    func() string { return httpauth.ClientIPRefusal(r, id) },
		"without a list": func() string { return httpauth.ClientIPRefusal(r, openID) },
	} {
		if allocs := testing.AllocsPerRun(100, func() {
			if msg := judged(); msg != "" {
				t.Fatal(msg)
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per request", name, allocs)
		}
	}
}

// BenchmarkHandlerCachedAllowedCIDRs is BenchmarkHandlerCached for a user
// with allowed_cidrs, from inside them.
func BenchmarkHandlerCachedAllowedCIDRs(b *testing.B) {
	h, secret := testHandler(b, func(u *store.User) { u.AllowedCIDRs = []string{"192.0.2.0/24", "10.0.0.0/8"} })
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	vars := map[string]any{caddyhttp.ClientIPVarKey: "10.1.2.3"}
	benchRequest(b, secret, func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if r.Header.Get("X-Tokengate-User-Type") != "programmatic" {
			b.Fatalf("not tagged: %v", r.Header)
		}
	})
}
