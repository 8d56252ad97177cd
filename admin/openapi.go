package admin

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// openAPIDoc describes this API (OpenAPI 3.1). Its server is Caddy's admin
// endpoint at its default address; as served, the server is the mount the
// document was fetched from (see serveOpenAPI).
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the document as stored, with its default server.
func OpenAPI() []byte { return openAPIDoc }

// The document around its top-level "servers" value, which serveOpenAPI
// replaces. Splitting the bytes, rather than decoding and encoding the
// whole document, keeps it as written: its member order and layout.
var openAPIHead, openAPITail = splitOpenAPI(openAPIDoc)

func splitOpenAPI(doc []byte) (head, tail []byte) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		panic("admin: openapi.json is not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			panic("admin: reading openapi.json: " + err.Error())
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			panic("admin: reading openapi.json: " + err.Error())
		}
		if key == "servers" {
			end := int(dec.InputOffset())
			return doc[:end-len(value)], doc[end:]
		}
	}
	panic("admin: openapi.json has no servers")
}

// openAPIServer is the one entry of the served document's servers.
type openAPIServer struct {
	URL         string `json:"url"`
	Description string `json:"description"`
}

// openAPIFor returns the document with server as its only server.
func openAPIFor(server string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(openAPIHead) + len(server) + 100 + len(openAPITail))
	buf.Write(openAPIHead)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode([]openAPIServer{{URL: server, Description: "This mount of the API: where this document was fetched from."}})
	buf.Truncate(buf.Len() - 1) // Encode's newline
	buf.Write(openAPITail)
	return buf.Bytes()
}

// serveOpenAPI answers GET and HEAD of openapi.json at the root of a mount,
// without a token: it documents the API and holds nothing secret. Its
// server is absolute, built from the request (scheme, host) and mount, the
// path prefix of the API on it, so clients need not resolve a relative
// URL: http://localhost:2019/tokengate on Caddy's admin endpoint,
// https://example.com/admin for tokengate_admin under /admin/.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, mount string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, []string{"GET", "HEAD"})
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	server := (&url.URL{Scheme: scheme, Host: r.Host, Path: mount}).String()
	doc := openAPIFor(server)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc)
	}
}

// sitePrefix is the path prefix that the site's route stripped before the
// request reached tokengate_admin (handle_path /admin/* strips /admin):
// the original request's path less what is left of it.
func sitePrefix(r *http.Request) string {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return ""
	}
	prefix, ok := strings.CutSuffix(orig.URL.Path, r.URL.Path)
	if !ok {
		return ""
	}
	return strings.TrimSuffix(prefix, "/")
}
