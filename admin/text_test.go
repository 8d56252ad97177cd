package admin_test

import (
	"strings"
	"testing"
)

// TestHiddenCharactersRefused: names and descriptions sent to the API with
// bidi controls, invisible or control characters, lone surrogates or bytes
// that are not UTF-8 are refused with 400 invalid_request naming the
// field, on every kind of record.
func TestHiddenCharactersRefused(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	o := "/orgs/" + w.org
	user, _ := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	stmts := `[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]`
	// Bodies are raw JSON, so that escapes and bytes reach the server as
	// written here.
	for _, tt := range []struct {
		name, tok, method, path, field, body string
	}{
		{"org name, right-to-left override", "", "POST", "/orgs", "name", `{"name":"acme\u202Egnp.exe"}`},
		{"account name, zero-width space", w.orgAdmin, "POST", o + "/accounts", "name", `{"name":"pro\u200Bd"}`},
		{"user name, isolate", w.orgAdmin, "POST", o + "/users", "name",
			`{"type":"programmatic","level":"account","account":"` + w.a1 + `","role":"viewer","name":"ci\u2066bot"}`},
		{"user description, lone surrogate", w.orgAdmin, "PATCH", o + "/users/" + user, "description", `{"description":"a\ud800b"}`},
		{"user name, bytes that are not UTF-8", w.orgAdmin, "PATCH", o + "/users/" + user, "name", "{\"name\":\"a\xffb\"}"},
		{"user name, newline", w.orgAdmin, "PATCH", o + "/users/" + user, "name", `{"name":"a\nb"}`},
		{"UI user email, right-to-left mark", w.orgAdmin, "POST", o + "/users", "email",
			`{"type":"ui","level":"organization","role":"viewer","name":"Ana","email":"ana\u200F@example.com"}`},
		{"policy name, byte order mark", w.orgAdmin, "POST", o + "/policies", "name", `{"name":"\uFEFFread","statements":` + stmts + `}`},
		{"policy description, tag characters", w.orgAdmin, "PUT", o + "/policies/" + w.polOrg, "description",
			`{"name":"p","description":"x\uDB40\uDC41","statements":` + stmts + `}`},
		{"webhook description, Arabic letter mark", w.orgAdmin, "POST", o + "/webhooks", "description",
			`{"url":"http://127.0.0.1:9/hook","events":["*"],"description":"a\u061Cb"}`},
		{"token name, soft hyphen", w.orgAdmin, "POST", o + "/users/" + user + "/tokens", "name", `{"name":"ad\u00ADmin"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.tok, tt.method, tt.path, tt.body)
			var eb struct {
				Error struct{ Code, Message string }
			}
			if r.status == 400 {
				r.json(t, &eb)
			}
			if r.status != 400 || eb.Error.Code != "invalid_request" || !strings.HasPrefix(eb.Error.Message, tt.field+" ") {
				t.Fatalf("%d %s, want 400 invalid_request naming %s", r.status, r.body, tt.field)
			}
		})
	}
	// Text of any script, with emoji, is fine.
	e.must(e.call(w.orgAdmin, "PATCH", o+"/users/"+user, map[string]any{"name": "Ana María · 日本 · Straße 🚀 ❤️", "description": "déploie — prod (EU)"}), 200)
}
