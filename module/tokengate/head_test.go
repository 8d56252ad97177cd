package tokengate_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// TestHeadIsJudgedAsGet: frameworks run the GET handler for HEAD, so a
// policy judges HEAD as both HEAD and GET, however the method is read: a
// deny of GET refuses HEAD, an allow of GET admits it.
func TestHeadIsJudgedAsGet(t *testing.T) {
	g := startGateway(t)
	ctx := g.ctx()
	pol, err := g.writer.CreatePolicy(ctx, store.Policy{Org: g.org, Name: "no-secret-reads", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/**"}},
		{Effect: "deny", Methods: []string{"GET"}, Paths: []string{"/api/secret/*"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	reads, err := g.writer.CreatePolicy(ctx, store.Policy{Org: g.org, Name: "reads", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/pub/**"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	_, denyTok := g.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{pol.ID} })
	_, readTok := g.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{reads.ID} })
	g.synced()

	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, tok, method, path string
		hdr                     []string
		body                    string
		status                  int
	}{
		{"HEAD past a deny of GET", denyTok, "HEAD", "/api/secret/x", nil, "", 403},
		{"head in lower case through the override", denyTok, "POST", "/api/secret/x", []string{"X-HTTP-Method-Override", "head"}, "", 403},
		{"HEAD in X-HTTP-Method-Override", denyTok, "POST", "/api/secret/x", []string{"X-HTTP-Method-Override", "HEAD"}, "", 403},
		{"HEAD in X-HTTP-Method", denyTok, "POST", "/api/secret/x", []string{"X-HTTP-Method", "HEAD"}, "", 403},
		{"HEAD in X-Method-Override", denyTok, "POST", "/api/secret/x", []string{"X-Method-Override", "HEAD"}, "", 403},
		{"_method=HEAD in the query", denyTok, "POST", "/api/secret/x?_method=HEAD", nil, "", 403},
		{"_method=HEAD in a form body", denyTok, "POST", "/api/secret/x", []string{"Content-Type", form}, "_method=HEAD", 403},
		{"HEAD where GET is not denied", denyTok, "HEAD", "/api/open/x", nil, "", 200},
		{"GET still denied", denyTok, "GET", "/api/secret/x", nil, "", 403},
		{"HEAD where GET is allowed", readTok, "HEAD", "/api/pub/x", nil, "", 200},
		{"HEAD through an override where GET is allowed", readTok, "GET", "/api/pub/x", []string{"X-HTTP-Method-Override", "HEAD"}, "", 200},
		{"HEAD where GET is not allowed", readTok, "HEAD", "/api/other/x", nil, "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, g.base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			}
		})
	}
}

// TestHeadRefusalsMatchGet: a HEAD request is refused with the status and
// headers the GET would get, on api and ui routes.
func TestHeadRefusalsMatchGet(t *testing.T) {
	g := startGateway(t)
	_, progTok := g.user(nil)
	_, viewerTok := g.user(func(u *store.User) { u.Role = store.RoleViewer })
	g.synced()
	for _, tc := range []struct{ path, tok string }{
		{"/ui/x", progTok}, // programmatic_ui_forbidden
		{"/api/x", ""},     // missing_token
		{"/api/x", "tgp_" + strings.Repeat("x", 46)},  // invalid_token
		{"/api/x?accountId=" + g.otherAct, viewerTok}, // account_forbidden
		{"/ui/x", "tgu_" + strings.Repeat("y", 46)},   // invalid_token on ui
		{"/org/x", viewerTok},                         // level_forbidden
	} {
		var got [2]*http.Response
		for i, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, g.base+tc.path, nil)
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got[i] = res
		}
		if got[0].StatusCode < 400 || got[0].StatusCode != got[1].StatusCode ||
			got[0].Header.Get("WWW-Authenticate") != got[1].Header.Get("WWW-Authenticate") ||
			got[0].Header.Get("Content-Type") != got[1].Header.Get("Content-Type") {
			t.Errorf("%s: GET %d %q, HEAD %d %q", tc.path, got[0].StatusCode, got[0].Header.Get("WWW-Authenticate"),
				got[1].StatusCode, got[1].Header.Get("WWW-Authenticate"))
		}
	}
}
