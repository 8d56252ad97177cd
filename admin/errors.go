package admin

import (
	"errors"
	"net/http"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/store"
)

// apiError is an error with the status and code the API answers it with.
type apiError struct {
	code errcode.Code
	msg  string
	// noCredential: no token was sent, so the challenge names no error
	// (RFC 6750 §3.1).
	noCredential bool
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.msg }

func invalid(field, msg string) error {
	return &apiError{code: errcode.InvalidRequest, msg: field + " " + msg}
}

func forbidden(msg string) error {
	return &apiError{code: errcode.Forbidden, msg: msg}
}

func notFound(msg string) error {
	return &apiError{code: errcode.NotFound, msg: msg}
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
		return &apiError{code: errcode.InvalidRequest, msg: fe.Field + " " + fe.Message}, true
	case errors.Is(err, store.ErrNotFound):
		return &apiError{code: errcode.NotFound, msg: err.Error()}, true
	case errors.Is(err, store.ErrConflict):
		return &apiError{code: errcode.Conflict, msg: err.Error()}, true
	case errors.Is(err, store.ErrUnavailable):
		return &apiError{code: errcode.StoreUnavailable,
			msg: "the store cannot be reached; nothing was changed, try again"}, true
	}
	return &apiError{code: errcode.Internal, msg: "internal error"}, false
}

// writeError answers with the contract's error body, as the gateway does.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.code == errcode.StoreUnavailable {
		httpauth.RetryUnavailable(w.Header())
	}
	httpauth.WriteError(w, e.code.Status(), string(e.code), e.msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpauth.WriteJSON(w, status, v) }
