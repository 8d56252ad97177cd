package admin

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes this API (OpenAPI 3.1). Its server URL is relative,
// so it is right on whichever mount serves it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the document.
func OpenAPI() []byte { return openAPIDoc }

// serveOpenAPI answers GET openapi.json, on both mounts, without a token:
// it documents the API and holds nothing secret.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/openapi.json" && r.URL.Path != "/tokengate/openapi.json" {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, []string{"GET", "HEAD"})
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(openAPIDoc)
	}
	return true
}
