// Package errcode names the error codes of tokengate's JSON errors
// ({"error":{"code","message"}}; docs/caddyfile.md and docs/admin-api.md) and the HTTP status
// each one is answered with. The gateway, the admin API and the metrics
// use these constants; no code is spelled anywhere else.
package errcode

import "net/http"

// Code is an error code of the contract.
type Code string

// The gateway's codes (docs/caddyfile.md).
const (
	MissingToken            Code = "missing_token"
	InvalidToken            Code = "invalid_token"
	ExpiredToken            Code = "expired_token"
	ProgrammaticUIForbidden Code = "programmatic_ui_forbidden"
	UserTypeForbidden       Code = "user_type_forbidden"
	AccountRequired         Code = "account_required"
	AccountForbidden        Code = "account_forbidden"
	LevelForbidden          Code = "level_forbidden"
	RoleForbidden           Code = "role_forbidden"
	IPForbidden             Code = "ip_forbidden"
	RateLimited             Code = "rate_limited"
	PayloadTooLarge         Code = "payload_too_large"
	TooManyHeaders          Code = "too_many_headers"
	StoreUnavailable        Code = "store_unavailable"
)

// The admin API's codes (docs/admin-api.md), beside PayloadTooLarge,
// RateLimited and StoreUnavailable.
const (
	InvalidRequest   Code = "invalid_request"
	Unauthorized     Code = "unauthorized"
	Forbidden        Code = "forbidden"
	NotFound         Code = "not_found"
	Conflict         Code = "conflict"
	MethodNotAllowed Code = "method_not_allowed"
	// Internal is a fault of tokengate's own, never an answer to bad
	// input; it is logged.
	Internal Code = "internal_error"
)

// Status is the HTTP status a code is answered with.
func (c Code) Status() int {
	switch c {
	case MissingToken, InvalidToken, ExpiredToken, Unauthorized:
		return http.StatusUnauthorized
	case ProgrammaticUIForbidden, UserTypeForbidden, AccountForbidden, LevelForbidden, RoleForbidden, IPForbidden, Forbidden:
		return http.StatusForbidden
	case AccountRequired, InvalidRequest:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Conflict:
		return http.StatusConflict
	case PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case TooManyHeaders:
		return http.StatusRequestHeaderFieldsTooLarge
	case RateLimited:
		return http.StatusTooManyRequests
	case StoreUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
