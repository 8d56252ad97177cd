package httpauth

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/tokengate/tokengate/module/token"
)

// MaxAuthorization bounds the Authorization header read.
const MaxAuthorization = 1024

// What BearerToken found.
const (
	NoToken = iota
	OneToken
	BadHeader
)

// BearerToken reads "Authorization: Bearer <token>" (scheme in any case,
// then one or more spaces). No header, an empty one or another scheme is
// no token. A bad header — several Authorization headers, an oversized
// one, "Bearer" followed by anything but spaces and a token ("Bearer<TAB>…",
// "Bearer,…", "Bearerx …"), or another scheme carrying something shaped
// like a tokengate token (in Basic credentials, say) — means a credential
// was sent that the gateway cannot read the one way every upstream would,
// and is refused rather than passed on unjudged.
func BearerToken(hdr http.Header) (string, int) {
	vals := hdr["Authorization"]
	switch {
	case len(vals) == 0:
		return "", NoToken
	case len(vals) > 1:
		return "", BadHeader
	}
	v := vals[0]
	if len(v) > MaxAuthorization {
		return "", BadHeader
	}
	if strings.TrimSpace(v) == "" {
		return "", NoToken
	}
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		if carriesToken(v) {
			return "", BadHeader
		}
		return "", NoToken
	}
	rest := v[len(scheme):]
	if rest == "" || rest[0] != ' ' {
		return "", BadHeader
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return "", BadHeader
	}
	return tok, OneToken
}

// carriesToken reports whether an Authorization value of another scheme
// holds a tokengate token, as sent or base64-decoded (Basic credentials
// such as "x:tgp_…", which some upstreams accept as a token).
func carriesToken(v string) bool {
	if containsTokenPrefix(v) {
		return true
	}
	_, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return false
	}
	cred = strings.TrimSpace(cred)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(cred); err == nil && containsTokenPrefix(string(dec)) {
			return true
		}
	}
	return false
}

func containsTokenPrefix(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, string(token.Programmatic)+"_") || strings.Contains(s, string(token.Personal)+"_")
}
