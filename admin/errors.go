package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/tokengate"
)

// apiError is an error with the status and code the API answers it with.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func invalid(field, msg string) error {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: field + " " + msg}
}

func forbidden(msg string) error {
	return &apiError{status: http.StatusForbidden, code: "forbidden", msg: msg}
}

func notFound(msg string) error {
	return &apiError{status: http.StatusNotFound, code: "not_found", msg: msg}
}

// asAPIError maps what a call returned to its answer. Errors the store
// does not classify are internal: their text stays in the log.
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	var fe *store.FieldError
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.As(err, &fe):
		return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: fe.Field + " " + fe.Message}, true
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "not_found", msg: err.Error()}, true
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, code: "conflict", msg: err.Error()}, true
	case errors.Is(err, store.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: "store_unavailable",
			msg: "the store cannot be reached; nothing was changed, try again"}, true
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal_error", msg: "internal error"}, false
}

// writeError answers with the contract's error body, as the gateway does.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	tokengate.WriteError(w, e.status, e.code, e.msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
