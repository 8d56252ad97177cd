package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestOpenAPIServer: the document served on a mount names that mount's
// API, absolute and without a trailing slash, and is otherwise the stored
// document byte for byte.
func TestOpenAPIServer(t *testing.T) {
	cases := []struct {
		name     string
		url      string // as the client sent it
		rest     string // the path left after the site's route stripped its prefix; "" for the admin endpoint
		tls      bool
		want     string
		endpoint bool
	}{
		{name: "admin endpoint", url: "http://localhost:2019/tokengate/openapi.json", endpoint: true,
			want: "http://localhost:2019/tokengate"},
		{name: "remote admin endpoint", url: "https://10.0.0.1:2021/tokengate/openapi.json", tls: true, endpoint: true,
			want: "https://10.0.0.1:2021/tokengate"},
		{name: "site mount", url: "https://example.com/admin/openapi.json", rest: "/openapi.json", tls: true,
			want: "https://example.com/admin"},
		{name: "nested site mount, plain HTTP", url: "http://127.0.0.1:8080/ops/tg/openapi.json", rest: "/openapi.json",
			want: "http://127.0.0.1:8080/ops/tg"},
		{name: "site mount at the root", url: "https://example.com/openapi.json", rest: "/openapi.json", tls: true,
			want: "https://example.com"},
		{name: "escaped prefix", url: "https://example.com/my%20admin/openapi.json", rest: "/openapi.json", tls: true,
			want: "https://example.com/my%20admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.url, nil)
			if !c.tls {
				r.TLS = nil
			} else if r.TLS == nil {
				r.TLS = &tls.ConnectionState{}
			}
			mount := "/tokengate"
			if !c.endpoint {
				// What Caddy does: keep the original request, then
				// strip the route's prefix.
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *r.Clone(r.Context())))
				r.URL.Path, r.URL.RawPath = c.rest, ""
				mount = sitePrefix(r)
			}
			rec := httptest.NewRecorder()
			serveOpenAPI(rec, r, mount)
			if rec.Code != 200 {
				t.Fatalf("status %d", rec.Code)
			}
			var doc struct{ Servers []struct{ URL string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Servers) != 1 || doc.Servers[0].URL != c.want {
				t.Fatalf("servers %+v, want the one url %s", doc.Servers, c.want)
			}
			served := rec.Body.Bytes()
			if !bytes.HasPrefix(served, openAPIHead) || !bytes.HasSuffix(served, openAPITail) {
				t.Fatal("the served document differs from the stored one beyond its servers")
			}
		})
	}
}

// TestOpenAPIHead: HEAD answers without a body; other methods are 405.
func TestOpenAPIHead(t *testing.T) {
	rec := httptest.NewRecorder()
	serveOpenAPI(rec, httptest.NewRequest("HEAD", "http://localhost:2019/tokengate/openapi.json", nil), "/tokengate")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	serveOpenAPI(rec, httptest.NewRequest("POST", "http://localhost:2019/tokengate/openapi.json", nil), "/tokengate")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", rec.Code, rec.Header())
	}
}
