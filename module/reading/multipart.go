package reading

import (
	"bytes"
	"mime"
	"regexp"
	"strings"
)

// boundaryParam is "boundary=" as Rack finds it, spaces allowed.
var boundaryParam = regexp.MustCompile(`boundary[ \t]*=`)

// Multipart bodies are read only in the form every parser agrees on; the
// rules below each come from a way PHP, Rack, Werkzeug, Python's email
// package or Go read the same bytes differently.

// multipartBoundary reads the boundary of a multipart Content-Type, when
// every parser reads the same one:
//   - the text "boundary" appears once outside the boundary's own value,
//     as the parameter's name, and is not found in the value first by a
//     case-sensitive search: PHP takes the first "boundary" anywhere in the
//     header (case-sensitively first) up to the next "=", Rack the last
//     "boundary=", Werkzeug also reads boundary*;
//   - 1 to 70 characters that no parser takes as a separator, quote or
//     escape (Rack ends a boundary at ";" or ",", PHP keeps backslashes
//     that Go unescapes), the same quoted or not.
func multipartBoundary(ct string) (string, error) {
	_, params, err := mime.ParseMediaType(ct)
	boundary := params["boundary"]
	if err != nil || boundary == "" || len(boundary) > 70 {
		return "", Unreadable("the multipart Content-Type cannot be read")
	}
	for i := 0; i < len(boundary); i++ {
		c := boundary[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("'()+_-./:=?", c) >= 0) {
			return "", Unreadable("the multipart boundary holds characters parsers read differently")
		}
	}
	if boundaryParam.MatchString(strings.ToLower(boundary)) {
		// Rack would take the last "boundary=", inside this value.
		return "", Unreadable("the multipart boundary names a boundary itself")
	}
	lower := strings.ToLower(ct)
	at := strings.Index(lower, "boundary")
	if first := strings.Index(ct, "boundary"); strings.Count(lower, "boundary")-strings.Count(strings.ToLower(boundary), "boundary") != 1 ||
		first >= 0 && first != at {
		return "", Unreadable("the multipart boundary is named other than once")
	}
	raw := strings.TrimLeft(ct[at+len("boundary"):], " \t")
	if !strings.HasPrefix(raw, "=") {
		return "", Unreadable("the multipart boundary is named other than once")
	}
	raw = strings.TrimLeft(raw[1:], " \t")
	if !strings.HasPrefix(raw, boundary) && !strings.HasPrefix(raw, `"`+boundary+`"`) {
		return "", Unreadable("the multipart boundary reads differently quoted and unquoted")
	}
	return boundary, nil
}

// multipartValues reads a multipart body strictly: it must be in the form
// every parser agrees on (no preamble, CRLF line ends, the boundary only at
// the start of a delimiter line, nothing but white space after the close),
// with part headers partNames accepts; else it is Unreadable. The values
// of parts named n are appended. An empty body has no parts.
func multipartValues(dst []string, body []byte, boundary string, n Name) ([]string, error) {
	if len(body) == 0 {
		return dst, nil
	}
	delim := []byte("--" + boundary)
	if !bytes.HasPrefix(body, delim) {
		return dst, Unreadable("the multipart body does not start with its boundary")
	}
	sep := append([]byte("\r\n"), delim...)
	rest := body[len(delim):]
	for {
		if bytes.HasPrefix(rest, []byte("--")) {
			if len(bytes.Trim(rest[2:], " \t\r\n")) > 0 {
				return dst, Unreadable("the multipart body goes on after its closing boundary")
			}
			return dst, nil
		}
		if !bytes.HasPrefix(rest, []byte("\r\n")) {
			return dst, Unreadable("a multipart boundary line has trailing characters")
		}
		rest = rest[2:]
		end := bytes.Index(rest, sep)
		if end < 0 {
			return dst, Unreadable("the multipart body has no closing boundary")
		}
		part := rest[:end]
		rest = rest[end+len(sep):]
		// A delimiter anywhere else — after a bare LF, mid-line — is one
		// to PHP or Rack.
		if containsFold(part, delim) {
			return dst, Unreadable("the multipart boundary appears inside a part")
		}
		head, content, found := bytes.Cut(part, []byte("\r\n\r\n"))
		if !found {
			if !bytes.HasSuffix(part, []byte("\r\n")) || len(part) < 2 {
				return dst, Unreadable("a multipart part has no header end")
			}
			head, content = part[:len(part)-2], nil
		}
		names, err := partNames(string(head))
		if err != nil {
			return dst, err
		}
		for _, name := range names {
			if n.Reads(name) {
				dst = append(dst, string(content))
				break
			}
		}
	}
}

// maxPartHeaderLine bounds a part header line: PHP reads part headers in
// 5120-byte pieces, so a longer line is two headers to it.
const maxPartHeaderLine = 1000

// partNames reads the field name of a part from its header block: as Go
// parses it, as written (PHP), and with every quoted pair unescaped
// (Python). The block must hold one Content-Disposition, named nowhere
// else in the block (Rack finds it anywhere), on lines PHP reads whole,
// no header twice, no Content-ID (Rack's fallback name), and no transfer
// encoding that some parsers decode.
func partNames(head string) ([]string, error) {
	if strings.Count(strings.ToLower(head), "content-disposition") != 1 {
		return nil, Unreadable("a multipart part names Content-Disposition other than once")
	}
	var disposition string
	seen := map[string]bool{}
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || strings.ContainsAny(line, "\r\n") || line[0] == ' ' || line[0] == '\t' {
			return nil, Unreadable("a multipart part header is folded or broken")
		}
		if len(line) > maxPartHeaderLine {
			return nil, Unreadable("a multipart part header line is too long to be read whole everywhere")
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(key) {
			return nil, Unreadable("a multipart part header has no name")
		}
		key = strings.ToLower(key)
		if seen[key] {
			return nil, Unreadable("a multipart part has a header twice")
		}
		seen[key] = true
		switch key {
		case "content-disposition":
			disposition = strings.TrimSpace(value)
		case "content-id":
			return nil, Unreadable("a multipart part has a Content-ID, which Rack may take as its name")
		case "content-transfer-encoding":
			switch strings.ToLower(strings.TrimSpace(value)) {
			case "7bit", "8bit", "binary":
			default:
				return nil, Unreadable("a multipart part uses a transfer encoding")
			}
		}
	}
	raw, err := dispositionName(disposition)
	if err != nil {
		return nil, err
	}
	// Go's reading, which also decodes RFC 2231 values; the tokenizer has
	// made sure there is no name* for it to prefer.
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil || params["name"] == "" {
		return nil, Unreadable("a multipart Content-Disposition cannot be read")
	}
	return []string{params["name"], raw, unquotePairs(raw)}, nil
}

// dispositionName reads a Content-Disposition's parameters one by one and
// returns the name as written. Only form-data with name, filename and
// filename* (each at most once) is read: name* and numbered pieces (name*1,
// which Werkzeug and Python's email package join into the name), other
// parameters, single-quoted values (PHP reads them), encoded words, and a
// backslash before the name's value ends (PHP does not read escapes, so
// it would end the value elsewhere) are Unreadable.
func dispositionName(d string) (string, error) {
	typ, rest, _ := strings.Cut(d, ";")
	if !strings.EqualFold(strings.TrimSpace(typ), "form-data") {
		return "", Unreadable("a multipart part is not form-data")
	}
	if strings.Contains(d, "=?") {
		return "", Unreadable("a multipart Content-Disposition holds an encoded word")
	}
	var name string
	haveName := false
	seen := map[string]bool{}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", Unreadable("a multipart Content-Disposition parameter has no value")
		}
		key := strings.ToLower(strings.TrimRight(rest[:eq], " \t"))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		switch key {
		case "name", "filename", "filename*":
		default:
			return "", Unreadable("a multipart Content-Disposition has a parameter other than name, filename and filename*")
		}
		if seen[key] {
			return "", Unreadable("a multipart Content-Disposition has a parameter twice")
		}
		seen[key] = true
		var value string
		switch {
		case strings.HasPrefix(rest, `"`):
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					if !haveName {
						return "", Unreadable("a multipart Content-Disposition escapes a quote before the name")
					}
					end++
				}
				end++
			}
			if end >= len(rest) {
				return "", Unreadable("a multipart Content-Disposition has an unterminated quote")
			}
			value, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, "'"):
			return "", Unreadable("a multipart Content-Disposition value is in single quotes")
		default:
			end := strings.IndexAny(rest, "; \t")
			if end < 0 {
				end = len(rest)
			}
			value, rest = rest[:end], rest[end:]
			if !isToken(value) && key != "filename*" {
				return "", Unreadable("a multipart Content-Disposition value is not a token")
			}
		}
		if key == "name" {
			name, haveName = value, true
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest != "" {
			if rest[0] != ';' {
				return "", Unreadable("multipart Content-Disposition parameters are not separated by ;")
			}
			rest = rest[1:]
		}
	}
	if !haveName || name == "" {
		return "", Unreadable("a multipart part has no name")
	}
	return name, nil
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// unquotePairs reads every "\x" as "x", as RFC 7230's quoted-pair and
// Python's email parser do (Go only for separators, PHP never).
func unquotePairs(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// containsFold reports whether b holds sub in any letter case.
func containsFold(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if b[i] == sub[0] && bytes.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
