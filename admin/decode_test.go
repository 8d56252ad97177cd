package admin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
)

func userFields() (fields, *struct {
	Type, Level, Account, Role, Name string
	Accounts, Policies               []string
	Disabled                         bool
	Statements                       []policy.Statement
	RateLimit                        *store.RateLimit `json:"rate_limit"`
}) {
	var v struct {
		Type, Level, Account, Role, Name string
		Accounts, Policies               []string
		Disabled                         bool
		Statements                       []policy.Statement
		RateLimit                        *store.RateLimit `json:"rate_limit"`
	}
	return fields{"type": &v.Type, "level": &v.Level, "account": &v.Account, "role": &v.Role, "name": &v.Name,
		"accounts": &v.Accounts, "policies": &v.Policies, "disabled": &v.Disabled, "statements": &v.Statements,
		"rate_limit": orNull{&v.RateLimit}}, &v
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		body  string
		field string // "" when the body is fine
	}{
		{`{"type":"ui","accounts":["act-1"],"disabled":true}`, ""},
		{`{}`, ""},
		{` { "name" : "x" } `, ""},
		{`{"type":"ui","type":"ui"}`, "type"},
		{`{"nope":1}`, "nope"},
		{`{"name":null}`, "name"},
		{`{"name":1}`, "name"},
		{`{"accounts":"act-1"}`, "accounts"},
		{`{"accounts":[1]}`, "accounts"},
		{`{"disabled":"yes"}`, "disabled"},
		{`{"statements":[{"effect":"allow","extra":1}]}`, "statements"},
		{`{"statements":[{"effect":5}]}`, "statements"},
		{`{"rate_limit":{"requests":100,"window":"1m"}}`, ""},
		{`{"rate_limit":null}`, ""},
		{`{"rate_limit":{"requests":"100","window":"1m"}}`, "rate_limit"},
		{`{"rate_limit":{"requests":1.5,"window":"1m"}}`, "rate_limit"},
		{`{"rate_limit":{"requests":100,"window":60}}`, "rate_limit"},
		{`{"rate_limit":{"requests":100,"window":"1m","burst":5}}`, "rate_limit"},
		{`{"rate_limit":"100/1m"}`, "rate_limit"},
		{`{"rate_limit":[]}`, "rate_limit"},
		{`[]`, "body"},
		{`"x"`, "body"},
		{``, "body"},
		{`{"name":"x"`, "body"},
		{`{"name":"x"}{}`, "body"},
		{`{"name":"x"} x`, "body"},
	}
	for _, tt := range tests {
		dst, _ := userFields()
		_, err := decodeObject([]byte(tt.body), dst)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != "invalid_request" || len(ae.msg) < len(tt.field) || ae.msg[:len(tt.field)] != tt.field {
			t.Errorf("%s: got %v, want invalid_request naming %q", tt.body, err, tt.field)
		}
	}
}

// TestDecodeOrNull: a null for an orNull field is present and clears what
// the field held; any other field still refuses null.
func TestDecodeOrNull(t *testing.T) {
	dst, v := userFields()
	v.RateLimit = &store.RateLimit{Requests: 1, Window: "1s"}
	present, err := decodeObject([]byte(`{"rate_limit":null}`), dst)
	if err != nil || !present["rate_limit"] || v.RateLimit != nil {
		t.Fatalf("null: present %v, rate_limit %+v, err %v; want present and cleared", present, v.RateLimit, err)
	}
	present, err = decodeObject([]byte(`{"rate_limit":{"requests":100,"window":"120s"}}`), dst)
	if err != nil || !present["rate_limit"] || v.RateLimit == nil || *v.RateLimit != (store.RateLimit{Requests: 100, Window: "120s"}) {
		t.Fatalf("an object: present %v, rate_limit %+v, err %v", present, v.RateLimit, err)
	}
	_, err = decodeObject([]byte(`{"rate_limit":null,"name":null}`), dst)
	if ae := (*apiError)(nil); !errors.As(err, &ae) || ae.code != "invalid_request" || !strings.HasPrefix(ae.msg, "name ") {
		t.Fatalf("a null name: %v, want invalid_request naming name", err)
	}
}

// FuzzDecodeObject: whatever the body, decoding never panics, answers only
// invalid_request errors, and what it accepts is JSON the standard decoder
// reads the same way.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"type":"programmatic","level":"account","account":"act-1a2b3c4d","role":"viewer","name":"ci"}`,
		`{"accounts":["act-1a2b3c4d","act-2b3c4d5e"],"disabled":false}`,
		`{"statements":[{"effect":"allow","methods":["GET"],"paths":["/api/**"]}]}`,
		`{"rate_limit":{"requests":100,"window":"1m"}}`, `{"rate_limit":null}`,
		`{"name":"\u00e9\ud83d\ude00"}`, `{"name":"x","name":"y"}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dst, got := userFields()
		_, err := decodeObject(body, dst)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code.Status() != 400 {
				t.Fatalf("error %v is not an invalid_request", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		_, want := userFields()
		if err := json.Unmarshal(body, want); err != nil {
			t.Fatalf("accepted %q that the standard decoder refuses: %v", body, err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Fatalf("decoded %s, the standard decoder %s", a, b)
		}
	})
}
