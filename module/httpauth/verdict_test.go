package httpauth

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/verify"
)

// TestVerificationRefusal: the one mapping from a failed verification to
// its answer. A disabled user's token is answered as an unknown one.
func TestVerificationRefusal(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code errcode.Code
		says string
	}{
		{verify.ErrMalformed, errcode.InvalidToken, "malformed"},
		{fmt.Errorf("reading: %w", verify.ErrExpired), errcode.ExpiredToken, "expired"},
		{verify.ErrUnknown, errcode.InvalidToken, "not valid"},
		{verify.ErrDisabled, errcode.InvalidToken, "not valid"},
		{verify.ErrUnavailable, errcode.StoreUnavailable, "cannot be reached"},
		{context.DeadlineExceeded, errcode.StoreUnavailable, "cannot be reached"},
	} {
		code, msg := VerificationRefusal(tt.err)
		if code != tt.code || !strings.Contains(msg, tt.says) {
			t.Errorf("%v: %s %q, want %s saying %q", tt.err, code, msg, tt.code, tt.says)
		}
	}
	d, _ := VerificationRefusal(verify.ErrDisabled)
	u, _ := VerificationRefusal(verify.ErrUnknown)
	if d != u {
		t.Error("a disabled user's token is told apart from an unknown one")
	}
}
