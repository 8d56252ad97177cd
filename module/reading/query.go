package reading

import "strings"

// QueryValues appends to dst every value some upstream may read for the
// parameter n in a raw query string (or a URL-encoded form body):
//   - pairs split on "&" alone (Go, Python) and on "&" and ";" (Rack, older
//     servers), so "x=1;accountId=B" gives both "1;accountId=B" for x and
//     "B" for accountId;
//   - a pair split at its first "=", and also just after "]=" as qs does;
//   - each value as sent and percent-decoded, when that differs.
//
// A pair without "=" has the empty value. Values are appended in the order
// found and may repeat.
func QueryValues(dst []string, rawQuery string, n Name) []string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		dst = pairValues(dst, pair, n)
		if strings.IndexByte(pair, ';') >= 0 {
			for pair != "" {
				var sub string
				sub, pair, _ = strings.Cut(pair, ";")
				dst = pairValues(dst, sub, n)
			}
		}
	}
	return dst
}

func pairValues(dst []string, pair string, n Name) []string {
	if pair == "" {
		return dst
	}
	name, value, _ := strings.Cut(pair, "=")
	if n.Reads(name) {
		dst = appendValue(dst, value)
	}
	// qs splits "a[b=c]=d" after "]=": name "a[b=c]", value "d".
	if i := strings.Index(pair, "]="); i >= 0 && i+1 != len(name) {
		if n.Reads(pair[:i+1]) {
			dst = appendValue(dst, pair[i+2:])
		}
	}
	return dst
}

func appendValue(dst []string, raw string) []string {
	dst = append(dst, raw)
	if dec := Decode(raw); dec != raw {
		dst = append(dst, dec)
	}
	return dst
}

// HeaderIs reports whether a header name as received is read as name
// (given in canonical form) by some upstream: letters in any case, and "_"
// or "." for "-" as CGI-style servers (PHP, Rack) do. (Caddy drops header
// names with "_" or "." unless its servers' expected_underscore_headers or
// expected_dot_headers let them in.)
func HeaderIs(key, name string) bool {
	return len(key) == len(name) && HeaderHasPrefix(key, name)
}

// HeaderHasPrefix reports whether a header name as received starts with
// prefix under the same reading as HeaderIs.
func HeaderHasPrefix(key, prefix string) bool {
	if len(key) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c, p := key[i], prefix[i]
		if c == '_' || c == '.' {
			c = '-'
		}
		if c != p && lowerASCII(c) != lowerASCII(p) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
