package reading

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// byteOrderMark is U+FEFF in UTF-8.
const byteOrderMark = "\ufeff"

// Name is a parameter name as an application asks for it ("accountId",
// "_method"), matched the way the most lenient upstream would.
type Name struct {
	folded string // ASCII lower case
}

// NewName returns the Name for an ASCII parameter name.
func NewName(name string) Name {
	b := []byte(name)
	for i, c := range b {
		if f, ok := fold(rune(c)); ok {
			b[i] = f
		}
	}
	return Name{folded: string(b)}
}

// Reads reports whether some upstream reads the raw name of a query or
// form pair (still percent-encoded, as on the wire) as n. The readings
// taken together:
//   - the name percent-decoded ("+" as space, also %uXXXX as old IIS and
//     JavaScript's unescape do), or decoded twice;
//   - letters in any case, including non-ASCII letters whose upper or
//     lower case is an ASCII letter ("ı" upper-cases to "I", as .NET's
//     case-insensitive comparison does);
//   - " " and "." read as "_" (PHP), leading white space and control
//     characters dropped (PHP, Tomcat) or not;
//   - leading "[" and "]" dropped (Rack), and a leading byte order mark
//     (Express's body-parser drops one before a form);
//   - the name ending at "[" or "]" (arrays and maps: "accountId[]",
//     "accountId[0]"), at "." (dotted binders), at a NUL byte (PHP), or
//     before trailing white space and control characters (Tomcat).
func (n Name) Reads(raw string) bool {
	if plainASCII(raw) {
		return n.matches(raw)
	}
	var buf [64]byte
	once := appendDecoded(buf[:0], raw)
	if n.matches(string(once)) {
		return true
	}
	if !hasPercent(once) {
		return false
	}
	return n.matches(string(appendDecoded(nil, string(once))))
}

// matches compares a decoded name with n, with and without PHP's dropping
// of leading spaces.
func (n Name) matches(s string) bool {
	if len(s) < len(n.folded) {
		return false
	}
	return n.match(s, true) || len(s) > 0 && spaceLen(s, 0) > 0 && n.match(s, false)
}

// match compares a decoded name with n; skipSpace drops leading white
// space first, as PHP does.
func (n Name) match(s string, skipSpace bool) bool {
	i := leading(s, skipSpace)
	for k := 0; k < len(n.folded); k++ {
		if i >= len(s) {
			return false
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		c, ok := fold(r)
		if (!ok || c != n.folded[k]) && (r != '[' || n.folded[k] != '_') { // PHP: an unclosed "[" is "_"
			return false
		}
		i += size
	}
	if i == len(s) {
		return true
	}
	switch s[i] {
	case '[', ']', '.', 0:
		return true
	}
	for i < len(s) {
		size := spaceLen(s, i)
		if size == 0 {
			return false
		}
		i += size
	}
	return true
}

// Fold returns s in lower case as the most lenient upstream compares it:
// letters whose upper or lower case is an ASCII letter as that letter in
// lower case ("ı" and "İ" as "i", the Kelvin sign as "k", "ſ" as "s"), other
// letters in Unicode lower case.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range s {
		if c, ok := fold(r); ok && r != ' ' && r != '.' {
			b.WriteByte(c)
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// leading is how many bytes of s come before a name: "[" and "]" (Rack),
// byte order marks (Express's body-parser drops one before a form) and,
// with skipSpace, white space (PHP).
func leading(s string, skipSpace bool) int {
	i := 0
	for i < len(s) {
		switch {
		case s[i] == '[' || s[i] == ']':
			i++
		case skipSpace && spaceLen(s, i) > 0:
			i += spaceLen(s, i)
		case strings.HasPrefix(s[i:], byteOrderMark):
			i += len(byteOrderMark)
		default:
			return i
		}
	}
	return i
}

// fold maps a rune to the ASCII byte it may be read as: letters in lower
// case (also non-ASCII letters with an ASCII upper or lower case), " " and
// "." as "_". ok is false for runes no upstream reads as ASCII.
func fold(r rune) (byte, bool) {
	switch {
	case r == ' ' || r == '.':
		return '_', true
	case 'A' <= r && r <= 'Z':
		return byte(r) + 'a' - 'A', true
	case r < utf8.RuneSelf:
		return byte(r), true
	}
	for _, c := range [2]rune{unicode.ToUpper(r), unicode.ToLower(r)} {
		if c < utf8.RuneSelf && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return byte(unicode.ToLower(c)), true
		}
	}
	for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
		if c < utf8.RuneSelf {
			return byte(unicode.ToLower(c)), true
		}
	}
	return 0, false
}

// isSpace reports whether c is trimmed from names by some upstream: white
// space, and every other control character (Java's String.trim, which
// Tomcat applies to multipart field names, drops everything up to " ").
func isSpace(c byte) bool {
	return c <= ' ' || c == 0x7f
}

// spaceLen is the length of the white space or control character at s[i]
// that some upstream trims from a name, 0 if there is none: isSpace's,
// Latin-1's NEL and no-break space as single bytes (Python's str.strip()
// after decoding a header as Latin-1, as WSGI and Starlette do), and UTF-8
// encoded Unicode white space (str.strip() after decoding UTF-8, as Django
// does).
func spaceLen(s string, i int) int {
	c := s[i]
	switch {
	case isSpace(c) || c == 0x85 || c == 0xa0:
		return 1
	case c < utf8.RuneSelf:
		return 0
	}
	if r, size := utf8.DecodeRuneInString(s[i:]); unicode.IsSpace(r) {
		return size
	}
	return 0
}

// plainASCII reports whether s needs no decoding: ASCII without "%" or
// "+".
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '+' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasPercent(b []byte) bool {
	for _, c := range b {
		if c == '%' {
			return true
		}
	}
	return false
}

// appendDecoded appends s percent-decoded leniently, as PHP, Rack and qs
// do: "+" is a space, %XX a byte, %uXXXX a UTF-8 encoded rune, and any
// other "%" stays as it is.
func appendDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') &&
			isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]):
			r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
			dst = utf8.AppendRune(dst, r)
			i += 5
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Decode returns s percent-decoded leniently (see appendDecoded).
func Decode(s string) string {
	if plainASCII(s) {
		return s
	}
	return string(appendDecoded(nil, s))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
