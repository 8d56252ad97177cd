package tokengate

import (
	"errors"
	"fmt"
	"strings"
)

// An IdentityHeader is one of the identity headers the handler can send
// upstream (docs/caddyfile.md), named by what follows the header prefix,
// in lower case: "user-id" is X-Tokengate-User-Id under the default prefix.
type IdentityHeader string

// The identity headers, as the contract lists them.
const (
	HeaderUserID    IdentityHeader = "user-id"
	HeaderUserType  IdentityHeader = "user-type"
	HeaderUserName  IdentityHeader = "user-name"
	HeaderOrgID     IdentityHeader = "org-id"
	HeaderAccountID IdentityHeader = "account-id"
	HeaderRole      IdentityHeader = "role"
	HeaderTokenID   IdentityHeader = "token-id"
)

// AllIdentityHeaders, alone in identity_headers, names every identity
// header: the default.
const AllIdentityHeaders = "all"

// identityHeaderList is every identity header, in the contract's order.
var identityHeaderList = []IdentityHeader{
	HeaderUserID, HeaderUserType, HeaderUserName, HeaderOrgID, HeaderAccountID, HeaderRole, HeaderTokenID,
}

// requiredIdentityHeaders are sent whatever the choice: the contract's
// gateway tags every admitted request with its user's identity and type.
var requiredIdentityHeaders = []IdentityHeader{HeaderUserID, HeaderUserType}

// identityHeaderSet is a set of identity headers, one bit per entry of
// identityHeaderList.
type identityHeaderSet uint8

func (s identityHeaderSet) has(name IdentityHeader) bool {
	for i, n := range identityHeaderList {
		if n == name {
			return s&(1<<i) != 0
		}
	}
	return false
}

// parseIdentityHeaders reads an identity_headers list and returns the
// headers it leaves out, or the first thing wrong with it: a name that is
// not an identity header, one named twice, "all" beside other names, no
// name at all, or a list leaving out user-id or user-type. Names are
// case-insensitive.
func parseIdentityHeaders(names []string) (omitted identityHeaderSet, err error) {
	if len(names) == 0 {
		return 0, errors.New("no header named: name user-id and user-type at least, or leave the option out to send every identity header")
	}
	all := identityHeaderSet(1<<len(identityHeaderList) - 1)
	var chosen identityHeaderSet
	for _, raw := range names {
		name := strings.ToLower(raw)
		if name == AllIdentityHeaders {
			if len(names) > 1 {
				return 0, fmt.Errorf("%q names every identity header and stands alone", raw)
			}
			return 0, nil
		}
		bit := identityHeaderSet(0)
		for i, n := range identityHeaderList {
			if IdentityHeader(name) == n {
				bit = 1 << i
			}
		}
		switch {
		case bit == 0:
			return 0, fmt.Errorf("unknown identity header %q (want %s, or %s)", raw, identityHeaderChoices(), AllIdentityHeaders)
		case chosen&bit != 0:
			return 0, fmt.Errorf("identity header %q named more than once", raw)
		}
		chosen |= bit
	}
	for _, n := range requiredIdentityHeaders {
		if !chosen.has(n) {
			return 0, fmt.Errorf("%s is missing: %s and %s are always sent, since every admitted request reaches the upstream tagged with its user's identity and type", n, HeaderUserID, HeaderUserType)
		}
	}
	return all &^ chosen, nil
}

// identityHeaderChoices lists the names identity_headers takes.
func identityHeaderChoices() string {
	names := make([]string, len(identityHeaderList))
	for i, n := range identityHeaderList {
		names[i] = string(n)
	}
	return strings.Join(names, " ")
}
