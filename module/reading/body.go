package reading

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"regexp"
	"strings"
)

// Kinds says how upstreams may parse a request body.
type Kinds uint8

// Ways upstreams parse bodies.
const (
	// URLEncoded: application/x-www-form-urlencoded, and POSTs without a
	// Content-Type (Rack parses those as forms).
	URLEncoded Kinds = 1 << iota
	// Multipart: multipart/form-data, and every other multipart type
	// (Rack parses multipart/mixed and multipart/related as forms too).
	Multipart
	// JSON: any Content-Type containing "/json" or "+json" (Laravel's
	// isJson takes the whole header, parameters included).
	JSON
)

// Unreadable is the reason a body (or its Content-Type) cannot be read
// unambiguously. The request is refused rather than judged one way.
type Unreadable string

func (u Unreadable) Error() string { return string(u) }

// BodyKinds tells how upstreams may parse the body of a POST with these
// Content-Type values, and the multipart boundary when one applies.
// Several Content-Type headers, a charset that is not an ASCII superset,
// or a multipart type whose boundary could be read two ways cannot be
// judged.
func BodyKinds(contentType []string) (kinds Kinds, boundary string, err error) {
	switch len(contentType) {
	case 0:
		return URLEncoded, "", nil
	case 1:
	default:
		return 0, "", Unreadable("the request has several Content-Type headers")
	}
	ct := strings.ToLower(strings.TrimSpace(contentType[0]))
	if ct == "" {
		return URLEncoded, "", nil
	}
	if err := checkCharsets(ct); err != nil {
		return 0, "", err
	}
	// PHP and Rack end the media type at ";", "," or white space.
	media := ct
	if i := strings.IndexAny(ct, ";, \t"); i >= 0 {
		media = ct[:i]
	}
	switch {
	case media == "application/x-www-form-urlencoded":
		kinds |= URLEncoded
	case strings.HasPrefix(media, "multipart/"):
		kinds |= Multipart
		if boundary, err = multipartBoundary(contentType[0]); err != nil {
			return 0, "", err
		}
	}
	if strings.Contains(ct, "/json") || strings.Contains(ct, "+json") {
		kinds |= JSON
	}
	return kinds, boundary, nil
}

// boundaryParam finds "boundary=" in a lower-cased Content-Type; Rack takes
// the last one, Go and PHP the parameter named so.
var boundaryParam = regexp.MustCompile(`boundary[ \t]*=[ \t]*`)

// multipartBoundary reads the boundary of a multipart Content-Type, when
// every parser reads the same one: named once, 1 to 70 characters that no
// parser takes as a separator, quote or escape (Rack ends a boundary at
// ";" or ",", PHP keeps backslashes that Go unescapes), and the same
// quoted or not.
func multipartBoundary(ct string) (string, error) {
	lower := strings.ToLower(ct)
	if len(boundaryParam.FindAllStringIndex(lower, -1)) != 1 {
		return "", Unreadable("the multipart boundary is not named exactly once")
	}
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
	raw := ct[boundaryParam.FindStringIndex(lower)[1]:]
	raw = strings.TrimLeft(raw, " \t")
	if !strings.HasPrefix(raw, boundary) && !strings.HasPrefix(raw, `"`+boundary+`"`) {
		return "", Unreadable("the multipart boundary reads differently quoted and unquoted")
	}
	return boundary, nil
}

// asciiCharsets are the charsets in which "_method=DELETE" reads the same
// as in ASCII. Others (UTF-16, UTF-7, EBCDIC code pages such as IBM037,
// which some servers decode) would let a body mean one thing to the gateway
// and another to the upstream.
var asciiCharsets = map[string]bool{
	"utf-8": true, "utf8": true, "us-ascii": true, "ascii": true,
	"iso-8859-1": true, "latin1": true, "windows-1252": true,
}

// checkCharsets checks every charset parameter of a lower-cased
// Content-Type.
func checkCharsets(ct string) error {
	for rest := ct; ; {
		i := strings.Index(rest, "charset")
		if i < 0 {
			return nil
		}
		rest = strings.TrimLeft(rest[i+len("charset"):], " \t")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		v := strings.TrimLeft(rest[1:], " \t")
		if end := strings.IndexAny(v, ";, \t"); end >= 0 {
			v = v[:end]
		}
		if !asciiCharsets[strings.Trim(v, `"'`)] {
			return Unreadable("the body's charset " + v + " is not read the same by every upstream")
		}
	}
}

// BodyValues appends to dst every value some upstream may read for the
// parameter n in a body of the given kinds. Bodies it cannot read
// unambiguously are an Unreadable error.
func BodyValues(dst []string, body []byte, kinds Kinds, boundary string, n Name) ([]string, error) {
	var err error
	if kinds&URLEncoded != 0 {
		dst = QueryValues(dst, string(body), n)
	}
	if kinds&Multipart != 0 {
		if dst, err = multipartValues(dst, body, boundary, n); err != nil {
			return dst, err
		}
	}
	if kinds&JSON != 0 {
		if dst, err = jsonValues(dst, body, n); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// multipartValues reads a multipart body strictly: it must be in the
// canonical form every parser agrees on (no preamble, CRLF line ends, one
// Content-Disposition per part with plain name and filename parameters, no
// encoded words or RFC 2231 parameters, no transfer encodings), else it is
// Unreadable. The values of parts named n are appended.
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

// paramName finds the parameters name, name*, filename and filename* of a
// lower-cased Content-Disposition, with what starts their value.
var paramName = regexp.MustCompile(`(^|[^a-z0-9_-])(file)?name(\*?)[ \t]*=[ \t]*(.?)`)

// partNames reads the field name of a part from its header block, as Go
// parses it, as written (PHP) and with every quoted pair unescaped. The
// block may hold only Content-Disposition (exactly once, and named nowhere
// else in the block: Rack finds it anywhere), Content-Type and
// Content-Transfer-Encoding, once each, on lines PHP reads whole.
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
		if !ok || strings.TrimSpace(key) != key {
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
		case "content-type":
		case "content-transfer-encoding":
			switch strings.ToLower(strings.TrimSpace(value)) {
			case "7bit", "8bit", "binary":
			default:
				return nil, Unreadable("a multipart part uses a transfer encoding")
			}
		default:
			return nil, Unreadable("a multipart part has a header other than Content-Disposition, Content-Type and Content-Transfer-Encoding")
		}
	}
	lower := strings.ToLower(disposition)
	if strings.Contains(lower, "=?") || strings.Contains(lower, `\"`) {
		return nil, Unreadable("a multipart part name is encoded")
	}
	typ, params, err := mime.ParseMediaType(disposition)
	if err != nil || typ != "form-data" || params["name"] == "" {
		return nil, Unreadable("a multipart Content-Disposition cannot be read")
	}
	found := paramName.FindAllStringSubmatch(lower, -1)
	for _, m := range found {
		switch {
		case m[2] == "" && m[3] == "*":
			return nil, Unreadable("a multipart part name is encoded (name*)")
		case m[4] == "'":
			// PHP reads single-quoted values; Go and Rack do not.
			return nil, Unreadable("a multipart part name is in single quotes")
		}
	}
	for k := range params {
		if k != "name" && k != "filename" {
			return nil, Unreadable("a multipart Content-Disposition has unknown parameters")
		}
	}
	// Every name-like parameter must be one Go read: no decoys such as
	// xname=, no filename and filename* together.
	if len(found) != len(params) {
		return nil, Unreadable("a multipart Content-Disposition names its part ambiguously")
	}
	raw := rawName(disposition)
	return []string{params["name"], raw, unquotePairs(raw)}, nil
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

// rawName is the name parameter as written, quotes dropped, escapes kept.
func rawName(disposition string) string {
	lower := strings.ToLower(disposition)
	for _, loc := range paramName.FindAllStringSubmatchIndex(lower, -1) {
		if loc[4] >= 0 { // filename
			continue
		}
		v := disposition[loc[8]:]
		if strings.HasPrefix(v, `"`) {
			if end := strings.IndexByte(v[1:], '"'); end >= 0 {
				return v[1 : 1+end]
			}
			return v[1:]
		}
		if end := strings.IndexAny(v, "; \t"); end >= 0 {
			return v[:end]
		}
		return v
	}
	return ""
}

// containsFold reports whether b holds sub in any letter case.
func containsFold(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if b[i] == '-' && bytes.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// jsonValues reads the members of a top-level JSON object named n. Their
// values must be strings; a body that is not JSON is Unreadable.
func jsonValues(dst []string, body []byte, n Name) ([]string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return dst, nil // no members; Express reads {}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return dst, Unreadable("the JSON body cannot be read")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		// Arrays and scalars have no members; still the whole body must
		// be JSON.
		var rest json.RawMessage
		if d, ok := tok.(json.Delim); ok && d == '[' {
			for dec.More() {
				if err := dec.Decode(&rest); err != nil {
					return dst, Unreadable("the JSON body cannot be read")
				}
			}
			if _, err := dec.Token(); err != nil {
				return dst, Unreadable("the JSON body cannot be read")
			}
		}
		return dst, jsonEnd(dec)
	}
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return dst, Unreadable("the JSON body cannot be read")
		}
		key, _ := keyTok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return dst, Unreadable("the JSON body cannot be read")
		}
		if !n.Reads(key) {
			continue
		}
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return dst, Unreadable("a JSON " + key + " member is not a string")
		}
		dst = append(dst, s)
	}
	if _, err := dec.Token(); err != nil {
		return dst, Unreadable("the JSON body cannot be read")
	}
	return dst, jsonEnd(dec)
}

// jsonEnd checks nothing but white space follows the JSON value.
func jsonEnd(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Unreadable("the JSON body has more than one value")
	}
	return nil
}
