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
	"reflect"
	"strconv"
	"strings"

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

// decodeObject decodes body, which must be one JSON object, member by
// member, and reports which keys were present.
//
// Every object of the body is read by the same rules, the nested ones (a
// rate_limit, each policy statement) as the body itself: a key matches
// exactly, not in any letter case as encoding/json would match it; an
// unknown or repeated key, a null (unless the field is orNull; never in a
// nested object or a list) or a value of the wrong type is an
// invalid_request naming the member, such as rate_limit.requests or
// statements[2].effect. What is accepted, every JSON parser reads the same
// way: there is no second member for another reader to prefer.
func decodeObject(body []byte, dst fields) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, invalid("body", "must be a JSON object")
	}
	present, err := decodeMembers(dec, "", dst)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("body", "must hold exactly one JSON object")
	}
	return present, nil
}

// decodeMembers reads the members of the object whose opening brace dec
// has just read, and its closing brace. parent names the object in errors:
// "" for the body, else the path to it (rate_limit, statements[0]).
func decodeMembers(dec *json.Decoder, parent string, dst fields) (map[string]bool, error) {
	present := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid("body", "is not valid JSON")
		}
		key, _ := tok.(string) // object keys are always strings
		name := key
		if parent != "" {
			name = parent + "." + key
		}
		ptr, known := dst[key]
		if !known {
			if parent == "" {
				return nil, invalid(name, "is not a field of this request")
			}
			return nil, invalid(name, "is not a field of "+parent)
		}
		nullable := false
		if n, ok := ptr.(orNull); ok {
			ptr, nullable = n.ptr, true
		}
		if present[key] {
			return nil, invalid(name, "is given more than once")
		}
		present[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("body", "is not valid JSON")
		}
		if isNull(raw) {
			if !nullable {
				return nil, invalid(name, "must not be null")
			}
			reflect.ValueOf(ptr).Elem().SetZero()
			continue
		}
		if err := decodeValue(name, raw, ptr); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, invalid("body", "is not valid JSON")
	}
	return present, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(raw, []byte("null")) }

// decodeValue decodes one JSON value, not null, into ptr: an object into
// the struct (or pointer to a struct) ptr holds, by decodeMembers over the
// struct's json names; a list item by item, refusing null items; anything
// else, which holds no object, with encoding/json. Request types hold no
// maps, interfaces or embedded structs, which would be read by
// encoding/json's rules.
func decodeValue(name string, raw json.RawMessage, ptr any) error {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	switch {
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if raw[0] != '{' {
			return invalid(name, "must be "+describe(ptr))
		}
		st := t
		if t.Kind() == reflect.Pointer {
			st = t.Elem()
		}
		obj := reflect.New(st)
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil { // the opening brace
			return invalid("body", "is not valid JSON")
		}
		if _, err := decodeMembers(dec, name, members(obj.Elem())); err != nil {
			return err
		}
		if t.Kind() == reflect.Pointer {
			v.Set(obj)
		} else {
			v.Set(obj.Elem())
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return invalid(name, "must be "+describe(ptr))
		}
		list := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			itemName := fmt.Sprintf("%s[%d]", name, i)
			if isNull(item) {
				return invalid(itemName, "must not be null")
			}
			if err := decodeValue(itemName, item, list.Index(i).Addr().Interface()); err != nil {
				return err
			}
		}
		v.Set(list)
	default:
		if err := json.Unmarshal(raw, ptr); err != nil {
			return invalid(name, "must be "+describe(ptr))
		}
	}
	return nil
}

// members maps the JSON names of a struct's fields, as its json tags
// give them, to where each is decoded.
func members(v reflect.Value) fields {
	out := fields{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = v.Field(i).Addr().Interface()
	}
	return out
}

func describe(ptr any) string {
	switch ptr.(type) {
	case *string:
		return "a string"
	case *int64:
		return "a whole number"
	case *[]string:
		return "a list of strings"
	case *bool:
		return "true or false"
	case *[]policy.Statement:
		return `a list of statements {"effect", "methods", "paths"}`
	case *policy.Statement:
		return `a statement {"effect", "methods", "paths"}`
	case **store.RateLimit:
		return `null or an object {"requests": a whole number, "window": a duration such as "1m"}`
	}
	return "of the documented type"
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
