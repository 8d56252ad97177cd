package admin

import (
	"encoding/json"
	"errors"
	"reflect"
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

// TestDecodeObject: the body and every object nested in it are read by
// one set of rules; a refusal names the member at fault.
func TestDecodeObject(t *testing.T) {
	tests := []struct {
		body  string
		field string // "" when the body is fine
	}{
		{`{"type":"ui","accounts":["act-1"],"disabled":true}`, ""},
		{`{}`, ""},
		{` { "name" : "x" } `, ""},
		{`{"accounts":[]}`, ""},
		{`{"type":"ui","type":"ui"}`, "type"},
		{`{"nope":1}`, "nope"},
		{`{"Name":"x"}`, "Name"},
		{`{"name":null}`, "name"},
		{`{"name":1}`, "name"},
		{`{"accounts":"act-1"}`, "accounts"},
		{`{"accounts":null}`, "accounts"},
		{`{"accounts":[1]}`, "accounts[0]"},
		{`{"accounts":["act-1",null]}`, "accounts[1]"},
		{`{"disabled":"yes"}`, "disabled"},
		{`{"statements":[{"effect":"allow","methods":["GET"],"paths":["/"]}]}`, ""},
		{`{"statements":[]}`, ""},
		{`{"statements":{}}`, "statements"},
		{`{"statements":[{"effect":"allow","extra":1}]}`, "statements[0].extra"},
		{`{"statements":[{"effect":5}]}`, "statements[0].effect"},
		{`{"statements":[null]}`, "statements[0]"},
		{`{"statements":["allow"]}`, "statements[0]"},
		{`{"statements":[{"EFFECT":"allow","methods":["GET"],"paths":["/"]}]}`, "statements[0].EFFECT"},
		{`{"statements":[{"effect":"deny","effect":"allow","methods":["GET"],"paths":["/"]}]}`, "statements[0].effect"},
		{`{"statements":[{"effect":"allow","methods":["GET"],"paths":["/"]},{"effect":"deny","Effect":"allow"}]}`, "statements[1].Effect"},
		{`{"statements":[{"effect":"allow","methods":null,"paths":["/"]}]}`, "statements[0].methods"},
		{`{"statements":[{"effect":"allow","methods":["GET",null],"paths":["/"]}]}`, "statements[0].methods[1]"},
		{`{"rate_limit":{"requests":100,"window":"1m"}}`, ""},
		{"{\"rate_limit\":\n { \"requests\" : 100 ,\t\"window\" : \"1m\" } }", ""},
		{`{"statements":[ {"effect":"allow"} , null ]}`, "statements[1]"},
		{`{"statements":[ { "effect" : null } ]}`, "statements[0].effect"},
		{`{"rate_limit":{}}`, ""}, // the store says what is missing
		{`{"rate_limit":null}`, ""},
		{`{"rate_limit":{"requests":"100","window":"1m"}}`, "rate_limit.requests"},
		{`{"rate_limit":{"requests":1.5,"window":"1m"}}`, "rate_limit.requests"},
		{`{"rate_limit":{"requests":100,"window":60}}`, "rate_limit.window"},
		{`{"rate_limit":{"requests":100,"window":"1m","burst":5}}`, "rate_limit.burst"},
		{`{"rate_limit":{"REQUESTS":5,"Window":"1m"}}`, "rate_limit.REQUESTS"},
		{`{"rate_limit":{"requests":5,"Window":"1m"}}`, "rate_limit.Window"},
		{`{"rate_limit":{"requests":7,"requests":3,"window":"1m"}}`, "rate_limit.requests"},
		{`{"rate_limit":{"requests":7,"window":"1m","window":null}}`, "rate_limit.window"},
		{`{"rate_limit":{"requests":7,"window":null}}`, "rate_limit.window"},
		{`{"rate_limit":{"requests":null,"window":"1m"}}`, "rate_limit.requests"},
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
		if !errors.As(err, &ae) || ae.code != "invalid_request" || !strings.HasPrefix(ae.msg, tt.field+" ") {
			t.Errorf("%s: got %v, want invalid_request naming %q", tt.body, err, tt.field)
		}
	}
}

// TestDecodeNested: what a nested object holds once accepted, and how a
// refusal reads.
func TestDecodeNested(t *testing.T) {
	dst, v := userFields()
	_, err := decodeObject([]byte(`{"rate_limit":{"window":"1m","requests":5},`+
		`"statements":[{"effect":"deny","methods":["GET"],"paths":["/a"]},{"paths":["/b"],"methods":["*"],"effect":"allow"}]}`), dst)
	want := []policy.Statement{{Effect: "deny", Methods: []string{"GET"}, Paths: []string{"/a"}}, {Effect: "allow", Methods: []string{"*"}, Paths: []string{"/b"}}}
	if err != nil || v.RateLimit == nil || *v.RateLimit != (store.RateLimit{Requests: 5, Window: "1m"}) || !reflect.DeepEqual(v.Statements, want) {
		t.Fatalf("decoded rate_limit %+v, statements %+v, err %v", v.RateLimit, v.Statements, err)
	}
	for _, tt := range []struct{ body, msg string }{
		{`{"rate_limit":{"requests":7,"requests":3,"window":"1m"}}`, "rate_limit.requests is given more than once"},
		{`{"rate_limit":{"requests":7,"window":null}}`, "rate_limit.window must not be null"},
		{`{"rate_limit":{"REQUESTS":5,"window":"1m"}}`, "rate_limit.REQUESTS is not a field of rate_limit"},
		{`{"rate_limit":{"requests":"5","window":"1m"}}`, "rate_limit.requests must be a whole number"},
		{`{"statements":[{"effect":"allow","when":"always"}]}`, "statements[0].when is not a field of statements[0]"},
		{`{"statements":[null]}`, "statements[0] must not be null"},
	} {
		dst, _ := userFields()
		_, err := decodeObject([]byte(tt.body), dst)
		if ae := (*apiError)(nil); !errors.As(err, &ae) || ae.msg != tt.msg {
			t.Errorf("%s: got %v, want %q", tt.body, err, tt.msg)
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
		`{"rate_limit":{"REQUESTS":5,"Window":"1m"}}`, `{"rate_limit":{"requests":7,"requests":3,"window":"1m"}}`,
		`{"rate_limit":{"requests":7,"window":"1m","window":null}}`, `{"rate_limit":{}}`,
		`{"statements":[{"effect":"deny","Effect":"allow","methods":["GET"],"paths":["/"]}]}`,
		`{"statements":[null,{"effect":"allow","methods":["GET",null],"paths":[]}]}`, `{"accounts":["act-1a2b3c4d",null]}`,
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
