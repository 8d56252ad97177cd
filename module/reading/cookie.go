package reading

import "strings"

// CookieValues appends to dst every value some upstream may read for the
// cookie n in the Cookie header fields given (HTTP/2 sends one field per
// cookie; all are read, each alone and all joined with ", "):
//   - pairs split on ";" (every parser), also on "," (RFC 2965 parsers,
//     older Rack), so "x=1, tenant=B" gives both "1, tenant=B" for x and
//     "B" for tenant, and also on white space not next to "=" (Python's
//     SimpleCookie reads "x=1 tenant=B" as two cookies);
//   - names read as Name.Reads reads a query parameter's name (PHP decodes
//     and mangles cookie names as it does query names);
//   - each value as sent, without the white space around it, without its
//     double quotes (Go, Python and Node drop them, PHP and Rack keep
//     them) and percent-decoded (PHP, Rack and Node decode, Go and Python
//     do not), when those differ.
//
// Which of several cookies of one name an upstream keeps differs too (PHP,
// Rack, Node and Go the first, Python the last): every one is appended.
func CookieValues(dst []string, fields []string, n Name) []string {
	if len(fields) > 1 {
		// Servers that fold repeated fields into one (PHP, WEBrick) read
		// "a=1, b=2" from two fields: the first cookie's value runs on.
		fields = append(fields[:len(fields):len(fields)], strings.Join(fields, ", "))
	}
	for _, field := range fields {
		for pair := range strings.SplitSeq(field, ";") {
			dst = cookieValues(dst, pair, n)
			if strings.IndexByte(pair, ',') >= 0 {
				for sub := range strings.SplitSeq(pair, ",") {
					dst = cookieValues(dst, sub, n)
				}
			}
		}
	}
	return dst
}

// cookieValues appends the values of pair, and of each word of it where
// white space not next to "=" splits it into several.
func cookieValues(dst []string, pair string, n Name) []string {
	dst = cookiePairValues(dst, pair, n)
	if words := cookieWords(pair); len(words) > 1 {
		for _, w := range words {
			dst = cookiePairValues(dst, w, n)
		}
	}
	return dst
}

// cookieWords splits a pair at white space (spaceLen's) as SimpleCookie
// does: its words, nil when there is at most one. White space before or
// after "=" belongs to the pair ("tenant = A" is one).
func cookieWords(pair string) []string {
	var words []string
	var word strings.Builder
	for i := 0; i < len(pair); {
		size := spaceLen(pair, i)
		if size == 0 {
			word.WriteByte(pair[i])
			i++
			continue
		}
		end := i + size
		for end < len(pair) {
			n := spaceLen(pair, end)
			if n == 0 {
				break
			}
			end += n
		}
		w := word.String()
		if !strings.HasSuffix(w, "=") && (end == len(pair) || pair[end] != '=') && w != "" {
			words = append(words, w)
			word.Reset()
		}
		i = end
	}
	if word.Len() > 0 {
		words = append(words, word.String())
	}
	if len(words) < 2 {
		return nil
	}
	return words
}

func cookiePairValues(dst []string, pair string, n Name) []string {
	pair = strings.TrimLeft(pair, " \t")
	if pair == "" {
		return dst
	}
	name, value, _ := strings.Cut(pair, "=")
	if len(name) < len(n.folded) || !n.Reads(name) {
		return dst
	}
	dst = appendValue(dst, value)
	if trimmed := strings.Trim(value, " \t"); trimmed != value {
		value = trimmed
		dst = appendValue(dst, value)
	}
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		dst = appendValue(dst, value[1:len(value)-1])
	}
	return dst
}
