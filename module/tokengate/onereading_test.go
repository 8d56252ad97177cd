package tokengate_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// rawHTTP sends a request written out in full (Host and Connection: close
// are added), for what an HTTP client would tidy up.
func (g *gateway) rawHTTP(head string, body string) response {
	g.t.Helper()
	msg := strings.ReplaceAll(strings.TrimSpace(head), "\n", "\r\n") + "\r\nHost: 127.0.0.1\r\n"
	if body != "" {
		msg += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	if !strings.Contains(strings.ToLower(head), "connection:") {
		msg += "Connection: close\r\n"
	}
	return g.wire(msg + "\r\n" + body)
}

// TestOneReading is the attack list of CONTRACT §5 "One reading": every
// request here was once admitted while the upstream read something the
// gateway had not judged.
func TestOneReading(t *testing.T) {
	g := startGateway(t)
	ctx := g.ctx()
	_, viewerTok := g.user(func(u *store.User) { u.Role = store.RoleViewer })
	jobs, err := g.writer.CreatePolicy(ctx, store.Policy{Org: g.org, Name: "jobs", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/**"}},
		{Effect: "allow", Methods: []string{"POST"}, Paths: []string{"/api/jobs/**"}},
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/scratch/**"}},
		{Effect: "deny", Methods: []string{"*"}, Paths: []string{"/api/admin/*", "/api/clusters/secret"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	_, jobsTok := g.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{jobs.ID} })
	// Everything under /api except DELETE.
	noDelete, err := g.writer.CreatePolicy(ctx, store.Policy{Org: g.org, Name: "no-delete", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/**"}},
		{Effect: "deny", Methods: []string{"DELETE"}, Paths: []string{"/api/**"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	_, policy2Tok := g.user(func(u *store.User) { u.Role, u.Policies = store.RolePolicy, []string{noDelete.ID} })
	_, uiTok := g.user(func(u *store.User) { u.Type = store.TypeUI })

	t.Run("Connection cannot drop the identity tags", func(t *testing.T) {
		for _, conn := range []string{
			"X-Tokengate-User-Type, X-Tokengate-Account-Id",
			"keep-alive, x-tokengate-user-id,X-TOKENGATE-ROLE",
			"X_Tokengate_Org_Id, X.Tokengate.Role",
		} {
			r := g.do("GET", "/api/x", viewerTok, "Connection", conn)
			r.want(t, 200, "")
			for _, name := range []string{"X-Tokengate-User-Id", "X-Tokengate-User-Type", "X-Tokengate-Org-Id", "X-Tokengate-Account-Id", "X-Tokengate-Role", "X-Tokengate-Token-Id", "X-Tokengate-User-Name"} {
				if r.upstream(t, name) == "" {
					t.Errorf("Connection: %s — %s did not reach the upstream", conn, name)
				}
			}
		}
		// Nor drop what was judged: without Content-Type, Rack reads a
		// POST body as a form.
		r := g.send("POST", "/api/jobs/1", jobsTok, strings.NewReader(`{"a":1}`), "Content-Type", "application/json", "Connection", "Content-Type")
		r.want(t, 200, "")
		if r.upstream(t, "Content-Type") != "application/json" {
			t.Errorf("Content-Type upstream: %q", r.upstream(t, "Content-Type"))
		}
		// Other Connection names still work as Connection names.
		r = g.do("GET", "/api/x", viewerTok, "Connection", "X-Private, X-Tokengate-Role", "X-Private", "1")
		r.want(t, 200, "")
		if r.upstream(t, "X-Private") != "" {
			t.Error("a header named in Connection reached the upstream")
		}
	})

	t.Run("trailers cannot carry identity or judged headers", func(t *testing.T) {
		r := g.rawChunked("POST /api/jobs/1 HTTP/1.1\r\nAuthorization: Bearer "+jobsTok+"\r\nContent-Type: text/plain"+"\r\nTrailer: X-Tokengate-User-Id, X-Account-Id\r\n",
			"3\r\nabc\r\n0\r\nX-Tokengate-User-Id: evil\r\nX-Account-Id: "+g.act2+"\r\n\r\n")
		r.want(t, 200, "")
		if r.echo.Body != "abc" || len(r.echo.Trailer) != 0 {
			t.Errorf("upstream got body %q and trailers %v", r.echo.Body, r.echo.Trailer)
		}
		if r.upstream(t, "X-Tokengate-User-Id") == "evil" || r.upstream(t, "X-Tokengate-Account-Id") != g.act1 {
			t.Errorf("tags upstream: %v", r.echo.Header)
		}
	})

	t.Run("the account in every spelling", func(t *testing.T) {
		for _, q := range []string{
			"accountI%64=" + g.act2, "AccountId=" + g.act2, "ACCOUNTID=" + g.act2, "x=1;accountId=" + g.act2,
			"accountId[]=" + g.act2, "accountId[0]=" + g.act2, "accountId[x]=" + g.act2, "%61ccountId=" + g.act2,
			"account%C4%B1d=" + g.act2, "account%u0049d=" + g.act2, "+accountId=" + g.act2, "accountId%00x=" + g.act2,
			"[accountId]=" + g.act2, "accountI%2564=" + g.act2, "accountId.x=" + g.act2,
			"accountId=" + g.act1 + "&accountId=" + g.act2, "accountId=" + g.act1 + ";accountId=" + g.act2,
			"accountId=" + g.act1 + "&AccountId=" + g.act2, "accountId[a=1]=" + g.act2,
			"accountId=" + strings.Replace(g.act1, "-", "%2D", 1), // one account, two spellings
		} {
			r := g.do("GET", "/api/x?"+q, viewerTok)
			if r.code != "account_forbidden" {
				t.Errorf("?%s → %d %q (upstream account %q)", q, r.status, r.code, r.upstream(t, "X-Tokengate-Account-Id"))
			}
		}
		// Header names with "_" or ".", where the server lets them in.
		lenient := *g
		lenient.base = g.lenient
		for _, hdr := range [][]string{
			{"X_Account_Id", g.act2}, {"x_account_id", g.act2}, {"X.Account.Id", g.act2},
		} {
			if r := lenient.do("GET", "/api/x?accountId="+g.act1, viewerTok, hdr...); r.code != "account_forbidden" {
				t.Errorf("%v → %d %q", hdr, r.status, r.code)
			}
		}
		// The same account named in several places is one account.
		for _, q := range []string{"accountId=" + g.act1 + "&accountId=" + g.act1, "AccountId=" + g.act1, "accountId[]=" + g.act1} {
			r := lenient.do("GET", "/api/x?"+q, viewerTok, "X_Account_Id", g.act1)
			r.want(t, 200, "")
			if r.upstream(t, "X-Tokengate-Account-Id") != g.act1 {
				t.Errorf("?%s tagged %q", q, r.upstream(t, "X-Tokengate-Account-Id"))
			}
		}
		// Parameters that merely contain the name are other parameters.
		g.do("GET", "/api/x?myaccountId="+g.act2+"&accountIds="+g.act2, viewerTok).want(t, 200, "")
	})

	t.Run("method overrides in every spelling", func(t *testing.T) {
		for _, q := range []string{"_m%65thod=DELETE", "%5Fmethod=DELETE", ".method=DELETE", "_METHOD=delete", "x=1;_method=DELETE", "_method[]=DELETE"} {
			r := g.do("GET", "/api/x?"+q, viewerTok)
			r.want(t, 403, "role_forbidden")
			if !strings.Contains(r.body2(), "DELETE") {
				t.Errorf("?%s refused as %s, which does not name DELETE", q, r.body)
			}
		}
		for _, hdr := range [][]string{
			{"X-Http-Method", "PUT"}, {"X-Method-Override", "patch"},
			{"X-HTTP-Method-Override", "GET, DELETE"}, {"X-HTTP-Method-Override", "GET", "X-HTTP-Method-Override", "DELETE"},
		} {
			g.do("GET", "/api/x", viewerTok, hdr...).want(t, 403, "role_forbidden")
		}
		lenient := *g
		lenient.base = g.lenient
		for _, hdr := range [][]string{{"X_HTTP_Method_Override", "DELETE"}, {"X.HTTP.Method", "DELETE"}} {
			lenient.do("GET", "/api/x", viewerTok, hdr...).want(t, 403, "role_forbidden")
		}
		g.do("GET", "/api/x?_method=GET", viewerTok, "X-HTTP-Method-Override", " HEAD ").want(t, 200, "")
		g.do("GET", "/api/x?method=card&payment_method=card", viewerTok).want(t, 200, "")
	})

	t.Run("method overrides in the body", func(t *testing.T) {
		form := "application/x-www-form-urlencoded"
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		mw.WriteField("name", "nightly")
		mw.WriteField("_method", "DELETE")
		mw.Close()
		for _, c := range []struct{ contentType, body string }{
			{form, "_method=DELETE"},
			{form + "; charset=utf-8", "a=1&_method=delete"},
			{"", "_method=DELETE"}, // Rack reads a POST without Content-Type as a form
			{"APPLICATION/X-WWW-FORM-URLENCODED", "%5Fmethod=DELETE"},
			{"application/x-www-form-urlencoded, text/plain", "_method=DELETE"},
			{mw.FormDataContentType(), mp.String()},
			{"application/json", `{"_method":"DELETE"}`},
			{"application/vnd.api+json", `{"a":[1],"_\u006dethod":"PUT"}`},
		} {
			hdr := []string{}
			if c.contentType != "" {
				hdr = append(hdr, "Content-Type", c.contentType)
			}
			r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), hdr...)
			r.want(t, 403, "role_forbidden")
			if strings.Contains(r.body2(), "does not allow GET") || strings.Contains(r.body2(), "does not allow POST") {
				t.Errorf("refusal names the wrong method: %s", r.body)
			}
		}
		// What cannot be read one way is refused.
		for _, c := range []struct{ contentType, body string }{
			{form + "; charset=utf-16", "_method=POST"},
			{"multipart/form-data; boundary=a; xboundary=b", "--a--"},
			{mw.FormDataContentType(), strings.ReplaceAll(mp.String(), "\r\n", "\n")},
			{"application/json", `{"_method":1}`},
			{"application/json", `{"_method":"POST"} {"_method":"DELETE"}`},
		} {
			g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), "Content-Type", c.contentType).want(t, 403, "role_forbidden")
		}
		g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader("_method=DELETE"), "Content-Type", form, "Content-Encoding", "gzip").want(t, 403, "role_forbidden")

		// Allowed bodies reach the upstream byte for byte.
		body := "name=nightly&_method=POST&note=" + strings.Repeat("x", 100000)
		r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(body), "Content-Type", form)
		r.want(t, 200, "")
		if r.echo.Body != body || r.echo.Method != "POST" {
			t.Errorf("upstream got %s with %d bytes, want POST with %d", r.echo.Method, len(r.echo.Body), len(body))
		}
		// Larger than 1 MiB: refused, with and without a length.
		big := "_method=POST&x=" + strings.Repeat("x", 1<<20)
		g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(big), "Content-Type", form).want(t, 413, "payload_too_large")
		g.send("POST", "/api/jobs/nightly", jobsTok, struct{ *strings.Reader }{strings.NewReader(big)}, "Content-Type", form).want(t, 413, "payload_too_large")
		// Where the role allows every method, the body is never read.
		r = g.send("POST", "/api/scratch/x", jobsTok, strings.NewReader(big), "Content-Type", form)
		r.want(t, 200, "")
		if len(r.echo.Body) != len(big) {
			t.Errorf("upstream got %d bytes of %d", len(r.echo.Body), len(big))
		}
	})

	t.Run("what a black-box attack found", func(t *testing.T) {
		// Each body made Rack, PHP (Laravel) or Express dispatch DELETE
		// while the gateway read a POST.
		for _, c := range []struct{ what, contentType, body string }{
			{"Rack: Content-Disposition inside another part header", "multipart/form-data; boundary=abc",
				"--abc\r\nX-A: Content-Disposition: x; name=_method\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"Rack: Content-Disposition inside the part's Content-Type", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Type: text/plain; a=\"Content-Disposition:; name=_method\"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"Rack: a quoted boundary holding ;", `multipart/form-data; boundary="ab;c"`,
				"--ab;c\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--ab\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--ab--\r\n--ab;c--\r\n"},
			{"Rack: a quoted boundary holding ,", `multipart/form-data; boundary="ab,c"`,
				"--ab,c\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--ab\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--ab--\r\n--ab,c--\r\n"},
			{"PHP, Rack: a quoted-pair in the boundary", `multipart/form-data; boundary="a\\b"`,
				"--a\\b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--a\\\\b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--a\\\\b--\r\n--a\\b--\r\n"},
			{"PHP: a bare-LF delimiter inside a value", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\n--abc\nContent-Disposition: form-data; name=\"_method\"\n\nDELETE\n--abc--\r\n--abc--\r\n"},
			{"Rack: a delimiter in the middle of a line", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1--abc\r\n --abc\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"Rack: a part header twice", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--abc--\r\n"},
			{"Express: a UTF-8 byte order mark before a form", "application/x-www-form-urlencoded", "\ufeff_method=DELETE"},
			{"Express: a byte order mark, charset given", "application/x-www-form-urlencoded; charset=utf-8", "\ufeff_method=DELETE"},
		} {
			r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), "Content-Type", c.contentType)
			if r.code != "role_forbidden" {
				t.Errorf("%s: %d %q", c.what, r.status, r.code)
			}
		}

		// Round two. A lower-case method is POST to Symfony, which
		// upper-cases it before reading _method.
		for _, method := range []string{"post", "pOST"} {
			r := g.rawHTTP(method+" /api/scratch/x HTTP/1.1\nAuthorization: Bearer "+policy2Tok+"\nContent-Type: application/x-www-form-urlencoded", "_method=DELETE")
			if r.code != "role_forbidden" {
				t.Errorf("%s with _method=DELETE in the body: %d %q", method, r.status, r.code)
			}
		}
		for _, c := range []struct{ what, body string }{
			// PHP reads single-quoted parameter values.
			{"PHP: a single-quoted part name", "--abc\r\nContent-Disposition: form-data; name='_method'\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"PHP: an unterminated single-quoted part name", "--abc\r\nContent-Disposition: form-data; name='_method\r\n\r\nDELETE\r\n--abc--\r\n"},
			// PHP reads part headers in 5120-byte pieces.
			{"PHP: a part header line of 5120 bytes", "--abc\r\nContent-Disposition: form-data;" + strings.Repeat(" ", 5077) + "name=_methodxyz; filename=\"a:b\"\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"an escaped quote in a part header", "--abc\r\nContent-Disposition: form-data; filename=\"a\\\"; name=_method\"; name=x\r\n\r\nDELETE\r\n--abc--\r\n"},
		} {
			r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), "Content-Type", "multipart/form-data; boundary=abc")
			if r.code != "role_forbidden" {
				t.Errorf("%s: %d %q", c.what, r.status, r.code)
			}
		}
		// Round three: PHP takes the first "boundary" in the header,
		// Werkzeug reads boundary* and joins name*1 pieces into the name,
		// formidable picks its parser by a substring anywhere.
		hidden := "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--xyz\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--xyz--\r\n\r\n--abc--\r\n"
		for _, c := range []struct{ what, contentType, body string }{
			{"PHP: boundaryx= before boundary=", "multipart/form-data; boundaryx=xyz; boundary=abc", hidden},
			{"PHP: boundary in another parameter's value", "multipart/form-data; x=boundary; y=xyz; boundary=abc", hidden},
			{"Werkzeug: boundary*", "multipart/form-data; boundary=abc; boundary*=xyz", hidden},
			{"Werkzeug: name*1 joined to name", "multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"_me\"; name*1=thod\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"formidable: multipart anywhere", "text/plain; x=multipart; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--abc--\r\n"},
			{"formidable: json anywhere", "text/plain; x=json", `{"_method":"DELETE"}`},
			{"formidable: urlencoded anywhere", "application/x-www-form-urlencodedx", "_method=DELETE"},
		} {
			r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), "Content-Type", c.contentType)
			if r.code != "role_forbidden" {
				t.Errorf("%s: %d %q", c.what, r.status, r.code)
			}
		}
		// Round four: Tomcat trims every control character from multipart
		// field names (Spring's HiddenHttpMethodFilter then reads _method).
		for _, name := range []string{"\x01_method", "_method\x1f", "\x00_method"} {
			body := "--abc\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\nDELETE\r\n--abc--\r\n"
			if r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(body), "Content-Type", "multipart/form-data; boundary=abc"); r.code != "role_forbidden" {
				t.Errorf("Tomcat: part name %q: %d %q", name, r.status, r.code)
			}
		}
		for _, p := range []string{"/api/adm%C4%B1n/users", "/api/admin.json"} {
			if r := g.raw("GET "+p+" HTTP/1.1", jobsTok); r.code != "role_forbidden" {
				t.Errorf("GET %s: %d %q", p, r.status, r.code)
			}
		}

		// What browsers and common clients send is not refused.
		for _, c := range []struct{ what, contentType, body string }{
			{"Chrome's boundary", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
				"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"},
			{"a CRLF after the closing boundary", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--abc--\r\n\r\n"},
			{"a non-ASCII file name (urllib3)", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.txt\r\nContent-Type: text/plain\r\n\r\nhi\r\n--abc--\r\n"},
			{"an Internet Explorer file name", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\x\\a.txt\"\r\n\r\nhi\r\n--abc--\r\n"},
			{"an empty multipart body", "multipart/form-data; boundary=abc", ""},
			{"a Content-Length in a part (OkHttp, Faraday)", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Length: 1\r\n\r\n1\r\n--abc--\r\n"},
			{".NET: filename and filename*", `multipart/form-data; boundary="3f1e0c2a-6b1d-4c1e-9d8e-2a7b5c4d3e2f"`,
				"--3f1e0c2a-6b1d-4c1e-9d8e-2a7b5c4d3e2f\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name=file; filename=a.txt; filename*=utf-8''a.txt\r\n\r\nhi\r\n--3f1e0c2a-6b1d-4c1e-9d8e-2a7b5c4d3e2f--\r\n"},
			{"Go's multipart.Writer: an escaped quote in a file name", "multipart/form-data; boundary=abc",
				"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\\\"b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhi\r\n--abc--\r\n"},
			{"an empty JSON body", "application/json", ""},
			{"a JSON body of white space", "application/json", " \r\n"},
		} {
			r := g.send("POST", "/api/jobs/nightly", jobsTok, strings.NewReader(c.body), "Content-Type", c.contentType)
			if r.status != 200 {
				t.Errorf("%s refused: %d %s", c.what, r.status, r.body)
			}
		}

		// Node keeps the first 1000 headers and Go sends them sorted: with
		// enough headers before them, the identity tags never arrive.
		var many []string
		for i := range 150 {
			many = append(many, fmt.Sprintf("A-%05d", i), "1")
		}
		r := g.do("GET", "/api/x", viewerTok, many...)
		r.want(t, 431, "too_many_headers")
		g.do("GET", "/api/x", viewerTok, many[:2*90]...).want(t, 200, "")

		// An organization-wide route judges an account it is given: the
		// upstream may read it.
		_, orgViewer := g.user(func(u *store.User) {
			u.Level, u.Account, u.Accounts, u.Role = store.LevelOrganization, "", []string{g.act1}, store.RoleViewer
		})
		for _, c := range []struct {
			query string
			hdr   []string
		}{
			{"accountId=" + g.act2, nil}, {"accountId=" + g.otherAct, nil}, {"", []string{"X-Account-Id", g.act2}},
			{"AccountId=" + g.act2, nil}, {"accountId=" + g.act1 + "&accountId=" + g.act2, nil},
		} {
			if r := g.do("GET", "/org/x?"+c.query, orgViewer, c.hdr...); r.code != "account_forbidden" {
				t.Errorf("organization route, ?%s %v: %d %q", c.query, c.hdr, r.status, r.code)
			}
		}
		r = g.do("GET", "/org/x?accountId="+g.act1, orgViewer)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-Account-Id") != g.act1 {
			t.Errorf("an account named on an organization route is not tagged: %v", r.echo.Header)
		}
		r = g.do("GET", "/org/x", orgViewer)
		r.want(t, 200, "")
		if r.upstream(t, "X-Tokengate-Account-Id") != "" {
			t.Error("an organization route without an account is tagged with one")
		}
	})

	t.Run("policy paths", func(t *testing.T) {
		for _, p := range []string{
			"/api/admin", "/api/admin/", "/api/Admin", "/api/admin;x=1", "/api/admin;x=1/users",
			"/api/clusters/secret;jsessionid=1", "/api/clusters/secret;", "/api/clusters/x/..;/secret",
			"/api/public/..;/admin/users",
		} {
			if r := g.raw("GET "+p+" HTTP/1.1", jobsTok); r.code != "role_forbidden" {
				t.Errorf("GET %s → %d %q (upstream path %q)", p, r.status, r.code, r.echo.Path)
			}
		}
		g.raw("GET /api/clusters/public;v=1 HTTP/1.1", jobsTok).want(t, 200, "")
		g.raw("GET /api/administrators HTTP/1.1", jobsTok).want(t, 200, "")
	})

	t.Run("Bearer followed by anything but spaces", func(t *testing.T) {
		for _, auth := range []string{"Bearer\t" + viewerTok, "Bearer\t" + uiTok, "Bearer," + uiTok, "Bearer" + uiTok} {
			for _, path := range []string{"/ui/x", "/fwd/x", "/api/x"} {
				r := g.rawHTTP("GET "+path+" HTTP/1.1\nAuthorization: "+auth, "")
				r.want(t, 401, "invalid_token")
			}
		}
		// A token under another scheme is a token some upstream reads.
		g.do("GET", "/ui/x", "", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("x:"+uiTok))).want(t, 401, "invalid_token")
		g.do("GET", "/fwd/x", "", "Authorization", "Token "+uiTok).want(t, 401, "invalid_token")
	})
}

// rawChunked sends a request head (request line and headers, CRLF-ended,
// without Host) and a chunked body as written.
func (g *gateway) rawChunked(head, chunks string) response {
	g.t.Helper()
	return g.wire(head + "Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)
}

// body2 is the response body as a string.
func (r response) body2() string { return string(r.body) }
