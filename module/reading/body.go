package reading

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
	// Parsers choose by different readings of the header: PHP and Rack
	// end the media type at ";", "," or white space, Laravel looks for
	// "/json" anywhere, formidable for "urlencoded", "multipart" and
	// "json" anywhere. Each kind any of them would see counts.
	if strings.Contains(ct, "urlencoded") {
		kinds |= URLEncoded
	}
	if strings.Contains(ct, "multipart") {
		kinds |= Multipart
		if boundary, err = multipartBoundary(contentType[0]); err != nil {
			return 0, "", err
		}
	}
	if strings.Contains(ct, "json") {
		kinds |= JSON
	}
	return kinds, boundary, nil
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
