package tokengate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestHandlerUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tokengate api {
		scope organization
		types programmatic
		forward_credentials
		identity_headers User-Id user-type ROLE
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{Mode: ModeAPI, Scope: ScopeOrganization, Types: []string{"programmatic"},
		ForwardCredentials: true, IdentityHeaders: []string{"user-id", "user-type", "role"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %+v, want %+v", h, want)
	}
}

func TestAppUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tokengate {
		etcd {
			endpoints http://10.0.0.1:2379 http://10.0.0.2:2379
			prefix /a
		}
		cache_entries 500
		cache_ttl 2m
		max_stale 30s
		warm_start off
		webhook_allow_private
	}`)
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(&a)
	want := `{"etcd":{"endpoints":["http://10.0.0.1:2379","http://10.0.0.2:2379"],"prefix":"/a"},"cache_entries":500,"cache_ttl":120000000000,"max_stale":30000000000,"webhook_allow_private":true,"warm_start":"off"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestOneRuleForCacheEntries: the Caddyfile and the JSON config accept and
// refuse the same values, with the same words: the rule has one definition.
func TestOneRuleForCacheEntries(t *testing.T) {
	for _, tt := range []struct {
		value   string
		refused bool
	}{{"-1", true}, {"0", false}, {"1", false}, {"250000", false}, {"10000001", true}, {"99999999999999", true}} {
		var fromFile App
		fileErr := fromFile.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tokengate {\n cache_entries " + tt.value + "\n}"))
		var fromJSON App
		if err := json.Unmarshal([]byte(`{"cache_entries":`+tt.value+`}`), &fromJSON); err != nil {
			t.Fatal(err)
		}
		jsonErr := fromJSON.Validate()
		if (fileErr != nil) != tt.refused || (jsonErr != nil) != tt.refused {
			t.Fatalf("cache_entries %s: Caddyfile %v, JSON %v; want refused=%v", tt.value, fileErr, jsonErr, tt.refused)
		}
		if tt.refused && !strings.Contains(fileErr.Error(), jsonErr.Error()) {
			t.Fatalf("cache_entries %s: the Caddyfile says %q, the JSON config %q", tt.value, fileErr, jsonErr)
		}
	}
}

// TestValidateChangesNothing: Validate only checks; defaults are Provision's.
func TestValidateChangesNothing(t *testing.T) {
	h := Handler{Mode: ModeAPI, IdentityHeaders: []string{"USER-ID", "user-type"}}
	before := h
	before.IdentityHeaders = append([]string(nil), h.IdentityHeaders...)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, before) {
		t.Fatalf("Handler.Validate changed %+v into %+v", before, h)
	}
	var a App
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, App{}) {
		t.Fatalf("App.Validate changed the app: %+v", a)
	}
}

// TestHandlerCaddyfileLines: each mistake is reported at the line that
// makes it, by the rule Validate applies to the JSON config.
func TestHandlerCaddyfileLines(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"tokengate ui {\n\tforward_credentials\n\tscope account\n}", "Testfile:3"},
		{"tokengate api {\n\taccount {query.a}\n\tscope organization\n}", "Testfile:3"},
		{"tokengate api {\n\tidentity_headers user-id\n}", "user-type is missing"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%q: %v, want %q", tt.body, err, tt.want)
		}
		var fromJSON Handler
		if err := json.Unmarshal([]byte(`{"mode":"ui","scope":"account"}`), &fromJSON); err != nil {
			t.Fatal(err)
		}
		if fromJSON.Validate() == nil {
			t.Fatal("the JSON config took a scope on a ui route")
		}
	}
}

// TestHandlerRules: the JSON config is held to the rules the Caddyfile is:
// an account source the handler can judge, types named once each.
func TestHandlerRules(t *testing.T) {
	for _, c := range []struct {
		json string
		ok   bool
	}{
		{`{"mode":"api","account":"{http.request.uri.path.1}"}`, true},
		{`{"mode":"api","account":"{query.tenant}"}`, true},
		{`{"mode":"api","account":"{http.request.header.X-Tenant}"}`, true},
		{`{"mode":"api","account":"{cookie.tenant}"}`, true},
		{`{"mode":"api","account":"{path.1}"}`, false},
		{`{"mode":"api","account":"{env.TENANT}"}`, false},
		{`{"mode":"api","account":"{http.vars.tenant}"}`, false},
		{`{"mode":"api","account":"{http.auth.user.account}"}`, false},
		{`{"mode":"api","account":"acct-1"}`, false},
		{`{"mode":"api","account":"{http.request.uri.path.x}"}`, false},
		{`{"mode":"api","types":[]}`, false},
		{`{"mode":"api","types":["ui","ui"]}`, false},
		{`{"mode":"api","types":["ui","programmatic"]}`, true},
	} {
		var h Handler
		if err := json.Unmarshal([]byte(c.json), &h); err != nil {
			t.Fatal(err)
		}
		if err := h.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.json, err)
		}
	}
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tokengate api {\n\ttypes ui ui\n}")); err == nil {
		t.Error("the Caddyfile took a type twice")
	}
}
