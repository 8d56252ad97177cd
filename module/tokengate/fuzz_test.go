package tokengate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
	"github.com/tokengate/tokengate/module/verify"
)

// fuzzGateway is a handler on a real verifier with two users of account
// act1 (the org also has act2): a viewer and a policy user allowed GET
// under /api, POST under /api/jobs, anything under /api/scratch, and never
// /api/admin/*.
type fuzzGateway struct {
	h               *Handler
	viewer, jobs    string
	act1            string
	viewerID, jobID string
}

func startFuzzGateway(tb testing.TB) *fuzzGateway {
	tb.Helper()
	srv := etcdtest.Start(tb)
	st := store.New(srv.Client(), "/tg")
	ctx := context.Background()
	op := store.Actor{ID: "op", Type: store.ActorOperator}
	if _, err := st.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, op); err != nil {
		tb.Fatal(err)
	}
	var acts []string
	for range 2 {
		a, err := st.CreateAccount(ctx, store.Account{Org: "acme", Name: "a"}, op)
		if err != nil {
			tb.Fatal(err)
		}
		acts = append(acts, a.ID)
	}
	p, err := st.CreatePolicy(ctx, store.Policy{Org: "acme", Name: "jobs", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/**"}},
		{Effect: "allow", Methods: []string{"POST"}, Paths: []string{"/api/jobs/**"}},
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/scratch/**"}},
		{Effect: "deny", Methods: []string{"*"}, Paths: []string{"/api/admin/*"}},
	}}, op)
	if err != nil {
		tb.Fatal(err)
	}
	g := &fuzzGateway{act1: acts[0]}
	for _, u := range []store.User{
		{Role: store.RoleViewer},
		{Role: store.RolePolicy, Policies: []string{p.ID}},
	} {
		u.Org, u.Type, u.Level, u.Account, u.Name = "acme", store.TypeProgrammatic, store.LevelAccount, acts[0], "bot"
		secret, _ := token.Generate(token.Programmatic)
		nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID()}}
		if _, err := st.CreateUser(ctx, u, &nt, op); err != nil {
			tb.Fatal(err)
		}
		if u.Role == store.RoleViewer {
			g.viewer = secret
		} else {
			g.jobs = secret
		}
	}
	v, err := verify.New(st, verify.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	g.h = &Handler{Mode: ModeAPI, logger: zap.NewNop()}
	if err := g.h.settle(); err != nil {
		tb.Fatal(err)
	}
	g.h.use(fixedVerifier{v}, DefaultHeaderPrefix)
	return g
}

// FuzzOneReading checks CONTRACT §5 "One reading" in process: whatever the
// request, when the handler admits it, readers written here independently
// of the handler (Go's net/url, the same with ";" as a separator, PHP's
// name mangling, case-insensitive names, net/http's form and multipart
// parsers, encoding/json) read only the account the handler tagged and
// only methods the user's role allows, and the body passes unchanged.
func FuzzOneReading(f *testing.F) {
	for _, s := range []struct {
		jobs                                  bool
		method, target, hdr, hdrVal, ct, body string
	}{
		{false, "GET", "/api/x?accountId=ACT1", "", "", "", ""},
		{false, "GET", "/api/x?accountI%64=act-00000000", "", "", "", ""},
		{false, "GET", "/api/x?x=1;AccountId=act-00000000", "X-Account-Id", "ACT1", "", ""},
		{false, "GET", "/api/x?%5Fmethod=DELETE", "", "", "", ""},
		{false, "GET", "/api/x?.method=PUT", "X-Http-Method-Override", "delete", "", ""},
		{true, "POST", "/api/jobs/1", "", "", "application/x-www-form-urlencoded", "_method=DELETE"},
		{true, "POST", "/api/jobs/1", "", "", "", "a=1;_method=PUT"},
		{true, "POST", "/api/jobs/1", "", "", "application/json", `{"_method":"DELETE"}`},
		{true, "POST", "/api/jobs/1", "", "", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n"},
		{true, "GET", "/api/admin;x=1/users", "", "", "", ""},
		{true, "DELETE", "/api/scratch/../admin", "", "", "", ""},
		{true, "POST", "/api/scratch/x", "Connection", "X-Tokengate-Account-Id", "text/plain", "_method=DELETE"},
	} {
		f.Add(s.jobs, s.method, s.target, s.hdr, s.hdrVal, s.ct, []byte(s.body))
	}
	g := startFuzzGateway(f)
	f.Fuzz(func(t *testing.T, jobs bool, method, target, hdr, hdrVal, ct string, body []byte) {
		target = strings.ReplaceAll(target, "ACT1", g.act1)
		hdrVal = strings.ReplaceAll(hdrVal, "ACT1", g.act1)
		r := fuzzRequest(method, target, hdr, hdrVal, ct, body)
		if r == nil {
			return // not a request net/http would have accepted
		}
		tok := g.viewer
		if jobs {
			tok = g.jobs
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		var admitted *http.Request
		var passed []byte
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			admitted = r
			passed, _ = io.ReadAll(r.Body)
			return nil
		})
		if err := g.h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatalf("handler error: %v", err)
		}
		if admitted == nil {
			return
		}
		if !bytes.Equal(passed, body) {
			t.Fatalf("body changed on the way: %q → %q", body, passed)
		}
		for _, name := range []string{"X-Tokengate-User-Id", "X-Tokengate-Account-Id", "X-Tokengate-Role"} {
			if admitted.Header.Get(name) == "" {
				t.Fatalf("%s not set", name)
			}
		}
		if got := admitted.Header.Get("X-Tokengate-Account-Id"); got != g.act1 {
			t.Fatalf("tagged account %q", got)
		}
		for _, a := range oracleAccounts(admitted, target) {
			if a != "" && a != g.act1 {
				t.Fatalf("admitted, yet account %q is read", a)
			}
		}
		for _, m := range oracleMethods(admitted, target, ct, body) {
			if !oracleAllows(jobs, m, admitted.URL.Path) {
				t.Fatalf("admitted, yet %s %s is read", m, admitted.URL.Path)
			}
		}
	})
}

// fuzzRequest builds the request net/http's server would hand Caddy, or
// nil when it would refuse it.
func fuzzRequest(method, target, hdr, hdrVal, ct string, body []byte) *http.Request {
	if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !strings.HasPrefix(target, "/") {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || strings.ContainsAny(target, " \t\r\n") {
		return nil
	}
	r := &http.Request{Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "127.0.0.1", Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
	if hdr != "" {
		if !validHeaderField(hdr) || strings.ContainsAny(hdrVal, "\r\n\x00") {
			return nil
		}
		r.Header.Add(textproto.CanonicalMIMEHeaderKey(hdr), strings.TrimSpace(hdrVal))
	}
	if ct != "" {
		if strings.ContainsAny(ct, "\r\n\x00") {
			return nil
		}
		r.Header.Add("Content-Type", strings.TrimSpace(ct))
	}
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	return r.WithContext(ctx)
}

func validHeaderField(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// Oracles: simple readers of the request in the ways common upstreams
// read it, written without module/reading.

// oracleQueries parses a query as Go does, and as Rack does (";" too).
func oracleQueries(raw string) []url.Values {
	a, _ := url.ParseQuery(raw)
	b, _ := url.ParseQuery(strings.ReplaceAll(raw, ";", "&"))
	return []url.Values{a, b}
}

// oracleName is a parameter name as PHP registers it, in lower case: leading
// spaces dropped, "." and " " as "_", ending at "[" or NUL.
func oracleName(k string) string {
	k = strings.TrimLeft(k, " ")
	if i := strings.IndexAny(k, "[\x00"); i >= 0 {
		k = k[:i]
	}
	return strings.ToLower(strings.NewReplacer(".", "_", " ", "_").Replace(k))
}

func oracleAccounts(r *http.Request, target string) []string {
	var out []string
	_, rawQuery, _ := strings.Cut(target, "?")
	for _, q := range oracleQueries(rawQuery) {
		for k, vs := range q {
			if oracleName(k) == "accountid" || strings.EqualFold(k, "accountId") {
				out = append(out, vs...)
			}
		}
	}
	for k, vs := range r.Header {
		if strings.EqualFold(strings.NewReplacer("_", "-", ".", "-").Replace(k), "X-Account-Id") {
			out = append(out, vs...)
			out = append(out, strings.Join(vs, ", "))
		}
	}
	return out
}

func oracleMethods(r *http.Request, target, ct string, body []byte) []string {
	out := []string{r.Method}
	for k, vs := range r.Header {
		switch strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k)) {
		case "x-http-method-override", "x-http-method", "x-method-override":
			for _, v := range vs {
				out = append(out, strings.ToUpper(strings.TrimSpace(v)))
				first, _, _ := strings.Cut(v, ",")
				out = append(out, strings.ToUpper(strings.TrimSpace(first)))
			}
		}
	}
	_, rawQuery, _ := strings.Cut(target, "?")
	fromValues := func(q url.Values) {
		for k, vs := range q {
			if oracleName(k) == "_method" {
				for _, v := range vs {
					out = append(out, strings.ToUpper(v))
				}
			}
		}
	}
	for _, q := range oracleQueries(rawQuery) {
		fromValues(q)
	}
	if r.Method != "POST" {
		return out
	}
	media, params, _ := mime.ParseMediaType(ct)
	switch {
	case ct == "" || media == "application/x-www-form-urlencoded":
		for _, q := range oracleQueries(string(body)) {
			fromValues(q)
		}
	case strings.HasPrefix(media, "multipart/"):
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if oracleName(p.FormName()) == "_method" {
				v, _ := io.ReadAll(p)
				out = append(out, strings.ToUpper(string(v)))
			}
		}
	}
	if strings.Contains(ct, "json") {
		var obj map[string]any
		if json.Unmarshal(body, &obj) == nil {
			for k, v := range obj {
				if s, ok := v.(string); ok && oracleName(k) == "_method" {
					out = append(out, strings.ToUpper(s))
				}
			}
		}
	}
	return out
}

// oracleAllows is the users' rights, written plainly. Frameworks run the
// GET handler for HEAD: for the policy user, HEAD is GET.
func oracleAllows(jobs bool, method, p string) bool {
	if jobs && strings.EqualFold(method, "HEAD") {
		method = "GET"
	}
	if !jobs {
		return method == "GET" || method == "HEAD" || method == "OPTIONS"
	}
	clean := path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	if lower := strings.ToLower(clean); lower == "/api/admin" || strings.HasPrefix(lower, "/api/admin/") {
		return false
	}
	switch {
	case strings.HasPrefix(clean, "/api/scratch/"):
		return true
	case method == "POST":
		return strings.HasPrefix(clean, "/api/jobs/")
	case method == "GET":
		return strings.HasPrefix(clean, "/api/")
	}
	return false
}
