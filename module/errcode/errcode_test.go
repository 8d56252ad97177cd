package errcode

import "testing"

func TestEveryCodeHasItsStatus(t *testing.T) {
	for code, want := range map[Code]int{
		MissingToken: 401, InvalidToken: 401, ExpiredToken: 401, ProgrammaticUIForbidden: 403,
		UserTypeForbidden: 403, AccountRequired: 400, AccountForbidden: 403, LevelForbidden: 403,
		RoleForbidden: 403, IPForbidden: 403, RateLimited: 429, PayloadTooLarge: 413, TooManyHeaders: 431,
		StoreUnavailable: 503, InvalidRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404,
		Conflict: 409, MethodNotAllowed: 405,
	} {
		if got := code.Status(); got != want {
			t.Errorf("%s: %d, want %d", code, got, want)
		}
	}
	if Code("nonsense").Status() != 500 {
		t.Error("an unknown code is not a 500")
	}
}
