package httpauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokengate/tokengate/module/errcode"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		values []string
		tok    string
		found  int
	}{
		{nil, "", NoToken},
		{[]string{""}, "", NoToken},
		{[]string{"   "}, "", NoToken},
		{[]string{"Basic abc"}, "", NoToken},
		{[]string{"Bearerx abc"}, "", BadHeader},
		{[]string{"Bearer\tabc"}, "", BadHeader},
		{[]string{"Bearer,abc"}, "", BadHeader},
		{[]string{"Basic eDp0Z3BfYWJj"}, "", BadHeader},
		{[]string{"Token tgp_abc"}, "", BadHeader},
		{[]string{"Basic dXNlcjpwYXNz"}, "", NoToken},
		{[]string{"Bearer"}, "", BadHeader},
		{[]string{"Bearer "}, "", BadHeader},
		{[]string{"Bearer a", "Bearer a"}, "", BadHeader},
		{[]string{"Bearer " + string(make([]byte, MaxAuthorization))}, "", BadHeader},
		{[]string{"Bearer abc"}, "abc", OneToken},
		{[]string{"bEARER   abc"}, "abc", OneToken},
	}
	for _, tt := range tests {
		hdr := http.Header{}
		if tt.values != nil {
			hdr["Authorization"] = tt.values
		}
		tok, found := BearerToken(hdr)
		if tok != tt.tok || found != tt.found {
			t.Errorf("%q: got %q, %d; want %q, %d", tt.values, tok, found, tt.tok, tt.found)
		}
	}
}

// TestChallenge: each refusal's headers, RFC 6750's challenge among them.
func TestChallenge(t *testing.T) {
	for _, tt := range []struct {
		code          errcode.Code
		noCredential  bool
		auth, retryIn string
	}{
		{errcode.MissingToken, true, `Bearer realm="tokengate"`, ""},
		{errcode.InvalidToken, false, `Bearer realm="tokengate", error="invalid_token"`, ""},
		{errcode.ExpiredToken, false, `Bearer realm="tokengate", error="invalid_token"`, ""},
		{errcode.RoleForbidden, false, `Bearer realm="tokengate", error="insufficient_scope"`, ""},
		{errcode.StoreUnavailable, false, "", "5"},
		{errcode.InvalidRequest, false, "", ""},
	} {
		hdr := http.Header{}
		Challenge(hdr, tt.code, tt.noCredential)
		if hdr.Get("WWW-Authenticate") != tt.auth || hdr.Get("Retry-After") != tt.retryIn {
			t.Errorf("%s: %v", tt.code, hdr)
		}
	}
}

// TestErrorJSON: the body written and the one handed to error routes are
// the same bytes.
func TestErrorJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, 401, "invalid_token", `a <b> & "c"`)
	if got := ErrorJSON("invalid_token", `a <b> & "c"`) + "\n"; w.Body.String() != got {
		t.Fatalf("written %q, handed %q", w.Body.String(), got)
	}
	if w.Header().Get("Content-Type") != "application/json; charset=utf-8" || w.Code != 401 {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}
