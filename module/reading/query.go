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
	for len(rawQuery) > 0 {
		// One pass over the pair: where it ends, its first "=", its
		// first "]=", and whether it holds a ";".
		end, eq, bracketEq, semi := 0, -1, -1, false
		for ; end < len(rawQuery) && rawQuery[end] != '&'; end++ {
			switch rawQuery[end] {
			case '=':
				if eq < 0 {
					eq = end
				}
				if bracketEq < 0 && end > 0 && rawQuery[end-1] == ']' {
					bracketEq = end - 1
				}
			case ';':
				semi = true
			}
		}
		pair := rawQuery[:end]
		dst = pairValues(dst, pair, eq, n)
		// qs splits "a[b=c]=d" after "]=": name "a[b=c]", value "d".
		if bracketEq >= 0 && bracketEq+1 != eq {
			dst = pairValues(dst, pair, bracketEq+1, n)
		}
		if semi {
			for sub := range strings.SplitSeq(pair, ";") {
				dst = pairValues(dst, sub, strings.IndexByte(sub, '='), n)
			}
		}
		if end == len(rawQuery) {
			break
		}
		rawQuery = rawQuery[end+1:]
	}
	return dst
}

// pairValues appends the value of a pair split at eq (-1: no "=") when its
// name reads as n.
func pairValues(dst []string, pair string, eq int, n Name) []string {
	if pair == "" {
		return dst
	}
	name, value := pair, ""
	if eq >= 0 {
		name, value = pair[:eq], pair[eq+1:]
	}
	if len(name) < len(n.folded) || !n.Reads(name) {
		return dst
	}
	return appendValue(dst, value)
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
