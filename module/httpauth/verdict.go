package httpauth

import (
	"errors"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/verify"
)

// VerificationRefusal maps why a token was not verified to the refusal that
// answers it, for the gateway, the admin API and the console alike.
// Disabled users get the answer of unknown tokens: a stolen token of a
// disabled user tells nothing. Anything else means the store could not be
// read.
func VerificationRefusal(err error) (errcode.Code, string) {
	switch {
	case errors.Is(err, verify.ErrMalformed):
		return errcode.InvalidToken, "the bearer token is malformed"
	case errors.Is(err, verify.ErrExpired):
		return errcode.ExpiredToken, "the bearer token has expired"
	case errors.Is(err, verify.ErrUnknown), errors.Is(err, verify.ErrDisabled):
		return errcode.InvalidToken, "the bearer token is not valid"
	default:
		return errcode.StoreUnavailable, "the token store cannot be reached; try again shortly"
	}
}
