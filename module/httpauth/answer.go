package httpauth

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tokengate/tokengate/module/errcode"
)

// Challenge sets the headers a refusal with code carries: for 401 the
// RFC 6750 challenge, naming no error when no credential was sent (§3.1)
// and invalid_token otherwise; for 403 insufficient_scope; for 503 a
// Retry-After of 5 s.
func Challenge(hdr http.Header, code errcode.Code, noCredential bool) {
	switch code.Status() {
	case http.StatusUnauthorized:
		if noCredential {
			hdr.Set("WWW-Authenticate", `Bearer realm="tokengate"`)
		} else {
			hdr.Set("WWW-Authenticate", `Bearer realm="tokengate", error="invalid_token"`)
		}
	case http.StatusForbidden:
		hdr.Set("WWW-Authenticate", `Bearer realm="tokengate", error="insufficient_scope"`)
	case http.StatusServiceUnavailable:
		RetryUnavailable(hdr)
	}
}

// RetryAfterUnavailable is how long, in seconds, a client is asked to wait
// before trying again while the store is unavailable or the gateway not
// ready.
const RetryAfterUnavailable = "5"

// RetryUnavailable sets the Retry-After of an answer saying the store is
// unavailable or the gateway not ready.
func RetryUnavailable(hdr http.Header) { hdr.Set("Retry-After", RetryAfterUnavailable) }

// WriteError writes {"error":{"code":…,"message":…}} with the status.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// WriteJSON writes v as the JSON answer with the status: never cached,
// never sniffed, never HTML-escaped (it is JSON, not HTML).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	encodeJSON(w, v)
}

// encodeJSON writes v as one line of JSON, not HTML-escaped.
func encodeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorJSON is the contract's error body, one line.
func ErrorJSON(code, msg string) string {
	var b strings.Builder
	encodeJSON(&b, errorBody{Error: errorDetail{Code: code, Message: msg}})
	return strings.TrimSuffix(b.String(), "\n")
}
