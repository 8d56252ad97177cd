package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// readBody reads a JSON request body of at most MaxBody bytes.
//
// The body must be declared application/json. Browsers send other types
// (forms, text/plain, none) across sites without asking first; JSON needs a
// preflight that never succeeds here, so a web page cannot make a visitor's
// browser change anything on a local admin endpoint.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, invalid("Content-Type", "must be application/json")
	}
	if r.ContentLength > MaxBody {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge()
		}
		return nil, invalid("body", "could not be read")
	}
	return body, nil
}

func tooLarge() error {
	return &apiError{code: errcode.PayloadTooLarge,
		msg: fmt.Sprintf("the body is larger than %d bytes", MaxBody)}
}

// fields maps the JSON keys a request may carry to where each is decoded.
type fields map[string]any

// orNull wraps where a field is decoded when the field may be null: null
// leaves the pointer it decodes into nil, which for a PATCH means "remove".
type orNull struct{ ptr any }

// decodeObject decodes body, which must be one JSON object, field by field:
// an unknown or repeated key, a null (unless the field is orNull), or a
// value of the wrong type is an invalid_request naming the field. It
// reports which keys were present.
func decodeObject(body []byte, dst fields) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, invalid("body", "must be a JSON object")
	}
	present := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid("body", "is not valid JSON")
		}
		key, _ := tok.(string) // object keys are always strings
		ptr, known := dst[key]
		if !known {
			return nil, invalid(key, "is not a field of this request")
		}
		nullable := false
		if n, ok := ptr.(orNull); ok {
			ptr, nullable = n.ptr, true
		}
		if present[key] {
			return nil, invalid(key, "is given more than once")
		}
		present[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("body", "is not valid JSON")
		}
		if bytes.Equal(raw, []byte("null")) && !nullable {
			return nil, invalid(key, "must not be null")
		}
		vdec := json.NewDecoder(bytes.NewReader(raw))
		vdec.DisallowUnknownFields()
		if err := vdec.Decode(ptr); err != nil {
			return nil, invalid(key, "must be "+describe(ptr)+detail(err))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, invalid("body", "is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("body", "must hold exactly one JSON object")
	}
	return present, nil
}

func describe(ptr any) string {
	switch ptr.(type) {
	case *string:
		return "a string"
	case *[]string:
		return "a list of strings"
	case *bool:
		return "true or false"
	case *[]policy.Statement:
		return `a list of statements {"effect", "methods", "paths"}`
	case **store.RateLimit:
		return `null or an object {"requests": a whole number, "window": a duration such as "1m"}`
	}
	return "of the documented type"
}

// detail adds what the JSON decoder found inside a nested value, such as
// an unknown field of a statement.
func detail(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf(" (%s has the wrong type)", typeErr.Field)
	case errors.As(err, &typeErr), errors.As(err, &syntaxErr):
		return ""
	}
	return " (" + err.Error() + ")"
}

// query reads a request's query parameters, refusing unknown and repeated
// ones.
func query(u *url.URL, allowed ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, invalid("query", "is not a valid query string")
	}
	out := make(map[string]string, len(vals))
	for key, v := range vals {
		ok := false
		for _, a := range allowed {
			ok = ok || a == key
		}
		if !ok {
			return nil, invalid(key, "is not a parameter of this request")
		}
		if len(v) > 1 {
			return nil, invalid(key, "is given more than once")
		}
		out[key] = v[0]
	}
	return out, nil
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// page reads the limit and cursor of a paged listing's query.
func page(q map[string]string) (limit int, cursor string, err error) {
	if limit, err = parseLimit(q["limit"]); err != nil {
		return 0, "", err
	}
	if cursor, err = decodeCursor(q["cursor"]); err != nil {
		return 0, "", err
	}
	return limit, cursor, nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, invalid("limit", fmt.Sprintf("must be a number from 1 to %d", MaxLimit))
	}
	return n, nil
}
