package upstreams

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// request is a request written byte for byte, so that odd spellings reach
// the server as they are.
type request struct {
	method, target string
	header         []string // "Name: value" lines
	body           string
	chunked        bool // send body as one chunk, without Content-Length
}

func (r request) bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", r.method, r.target)
	for _, h := range r.header {
		b.WriteString(h + "\r\n")
	}
	switch {
	case r.chunked:
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(r.body), r.body)
	case r.body != "" || r.method == "POST" || r.method == "PUT":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	default:
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// roundTrip writes req on conn and reads the answer.
func roundTrip(t *testing.T, conn net.Conn, br *bufio.Reader, req request) (*http.Response, []byte) {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(req.bytes()); err != nil {
		t.Fatalf("writing %s %s: %v", req.method, req.target, err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: req.method})
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v", req.method, req.target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v", req.method, req.target, err)
	}
	return resp, body
}

func dial(t *testing.T, u *Upstream) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(u.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// read sends req to u on a connection of its own and decodes the reading.
func read(t *testing.T, u *Upstream, req request) Reading {
	t.Helper()
	req.header = append(req.header, "Connection: close")
	conn, br := dial(t, u)
	resp, body := roundTrip(t, conn, br, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s: %s\n%s", u.Name, req.method, req.target, resp.Status, body)
	}
	var reading Reading
	if err := json.Unmarshal(body, &reading); err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", u.Name, req.method, req.target, err, body)
	}
	return reading
}

func form(fields ...string) (contentType, body string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return "Content-Type: " + w.FormDataContentType(), b.String()
}

type field struct {
	name string
	get  func(Reading) []string
}

var (
	methods        = field{"methods", func(r Reading) []string { return r.Methods }}
	queryAccounts  = field{"query_accounts", func(r Reading) []string { return r.QueryAccounts }}
	headerAccounts = field{"header_accounts", func(r Reading) []string { return r.HeaderAccounts }}
	cookieAccounts = field{"cookie_accounts", func(r Reading) []string { return r.CookieAccounts }}
	bodyAccounts   = field{"body_accounts", func(r Reading) []string { return r.BodyAccounts }}
	paths          = field{"paths", func(r Reading) []string { return r.Paths }}
)

const urlencoded = "Content-Type: application/x-www-form-urlencoded"

// TestReadings sends oddly spelled requests to every upstream and checks
// that exactly the parsers named read the value, as their documentation
// says they do.
func TestReadings(t *testing.T) {
	all := All(t)
	multipartType, multipartBody := form("_method", "PUT", "accountId", "m")
	everyone := Names
	cases := []struct {
		name   string
		req    request
		field  field
		value  string
		readBy []string // and no other parser
	}{
		{"plain query", request{method: "GET", target: "/?accountId=a"}, queryAccounts, "a", everyone},
		{"escaped letter in a name", request{method: "GET", target: "/?accountI%64=b"}, queryAccounts, "b", everyone},
		// Rack 2.2 splits the query on "&" and ";"; PHP (arg_separator.input),
		// qs, querystring and parse_qs on "&" only, and Go drops a pair
		// holding ";".
		{"semicolon separator", request{method: "GET", target: "/?x=1;accountId=c"}, queryAccounts, "c", []string{"rack"}},
		{"letter case", request{method: "GET", target: "/?AccountId=d"}, queryAccounts, "d", everyone},
		// Dotless ı upper-cases to I in every language.
		{"dotless i", request{method: "GET", target: "/?ACCOUNT%C4%B1D=i"}, queryAccounts, "i", everyone},
		// İ lower-cases to i only in Go (simple case mapping); the others
		// map it to "i̇" (full case mapping, two code points).
		{"dotted capital I", request{method: "GET", target: "/?account%C4%B0d=j"}, queryAccounts, "j", []string{"go"}},
		{"array brackets", request{method: "GET", target: "/?accountId[]=e"}, queryAccounts, "e", []string{"php", "rack", "node"}},
		{"nested key", request{method: "GET", target: "/?accountId[x][y]=n"}, queryAccounts, "n", []string{"php", "rack", "node"}},
		{"plus is a space", request{method: "GET", target: "/?accountId=a+b"}, queryAccounts, "a b", everyone},

		// Only a POST is overridden by the frameworks (php, rack, node);
		// the generic apps (python, go) honour overrides on any method.
		{"form _method", request{method: "POST", target: "/", header: []string{urlencoded}, body: "_method=DELETE"}, methods, "DELETE", everyone},
		{"form _method, chunked", request{method: "POST", target: "/", header: []string{urlencoded}, body: "_method=DELETE", chunked: true}, methods, "DELETE", everyone},
		{"form _method on PUT", request{method: "PUT", target: "/", header: []string{urlencoded}, body: "_method=DELETE"}, methods, "DELETE", []string{"python", "go"}},
		// PHP turns "." and " " in names into "_"; method-override's query
		// getter reads _method with node's querystring, Rack never reads
		// the query.
		{"query .method", request{method: "POST", target: "/?.method=DELETE"}, methods, "DELETE", []string{"php"}},
		{"query _method", request{method: "POST", target: "/?_method=DELETE"}, methods, "DELETE", []string{"php", "node", "python", "go"}},
		{"multipart _method", request{method: "POST", target: "/", header: []string{multipartType}, body: multipartBody}, methods, "PUT", []string{"php", "rack", "python", "go"}},
		{"multipart accountId", request{method: "POST", target: "/", header: []string{multipartType}, body: multipartBody}, bodyAccounts, "m", []string{"php", "rack", "python", "go"}},
		{"override header", request{method: "POST", target: "/", header: []string{"X-HTTP-Method-Override: PATCH"}}, methods, "PATCH", everyone},
		{"override header, lower case", request{method: "POST", target: "/", header: []string{"X-HTTP-Method-Override: patch"}}, methods, "PATCH", everyone},
		{"X-HTTP-Method header", request{method: "POST", target: "/", header: []string{"X-HTTP-Method: PUT"}}, methods, "PUT", []string{"php", "node", "python", "go"}},
		// Rack reads a POST without a Content-Type as a form.
		{"no content type", request{method: "POST", target: "/", body: "_method=DELETE"}, methods, "DELETE", []string{"rack"}},
		// Laravel, body-parser's json(), Flask-style is_json and Go read
		// JSON bodies; Rack has no JSON parser.
		{"JSON _method", request{method: "POST", target: "/", header: []string{"Content-Type: application/json"}, body: `{"_method":"PUT","accountId":"k"}`}, methods, "PUT", []string{"php", "node", "python", "go"}},
		{"JSON accountId", request{method: "POST", target: "/", header: []string{"Content-Type: application/json"}, body: `{"_method":"PUT","accountId":"k"}`}, bodyAccounts, "k", []string{"php", "node", "python", "go"}},
		{"form accountId", request{method: "POST", target: "/", header: []string{urlencoded}, body: "accountId=f"}, bodyAccounts, "f", everyone},

		{"header", request{method: "GET", target: "/", header: []string{"X-Account-Id: h"}}, headerAccounts, "h", everyone},
		// CGI-style names (HTTP_X_ACCOUNT_ID) do not tell "-" from "_".
		{"underscore header", request{method: "GET", target: "/", header: []string{"X_Account_Id: u"}}, headerAccounts, "u", []string{"php", "rack"}},

		{"cookie", request{method: "GET", target: "/", header: []string{"Cookie: x=1; accountId=c1"}}, cookieAccounts, "c1", everyone},
		{"cookie, second of two", request{method: "GET", target: "/", header: []string{"Cookie: accountId=c1; accountId=c2"}}, cookieAccounts, "c2", []string{"python", "go"}},
		{"cookie, second field", request{method: "GET", target: "/", header: []string{"Cookie: accountId=c1", "Cookie: accountId=c3"}}, cookieAccounts, "c3", []string{"python", "go"}},
		{"cookie, quoted", request{method: "GET", target: "/", header: []string{`Cookie: accountId="q1"`}}, cookieAccounts, "q1", []string{"node", "python", "go"}},
		{"cookie, encoded", request{method: "GET", target: "/", header: []string{"Cookie: accountId=a%2Db"}}, cookieAccounts, "a-b", []string{"php", "rack", "node"}},

		{"raw path", request{method: "GET", target: "/a%2Fb;x=1/c"}, paths, "/a%2Fb;x=1/c", everyone},
		{"decoded path", request{method: "GET", target: "/a%2Fb;x=1/c"}, paths, "/a/b;x=1/c", everyone},
		{"servlet path", request{method: "GET", target: "/a%2Fb;x=1/c"}, paths, "/a/b/c", []string{"go"}},
		// The WHATWG URL parser and PHP's SCRIPT_NAME resolve dot segments.
		{"dot segments", request{method: "GET", target: "/a/../b"}, paths, "/b", []string{"php", "node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range all {
				reading := read(t, u, tc.req)
				got := slices.Contains(tc.field.get(reading), tc.value)
				if want := slices.Contains(tc.readBy, u.Name); got != want {
					t.Errorf("%s: %s %s: %s %q holds %q: %v, want %v", u.Name, tc.req.method, tc.req.target,
						tc.field.name, tc.field.get(reading), tc.value, got, want)
				}
			}
		})
	}
}

// TestEcho checks the parts of the reading every parser fills the same way.
func TestEcho(t *testing.T) {
	for _, u := range All(t) {
		t.Run(u.Name, func(t *testing.T) {
			conn, br := dial(t, u)
			req := request{method: "PUT", target: "/echo?q=1", header: []string{"X-Echo: echoed", "Connection: close"}, body: "x"}
			resp, body := roundTrip(t, conn, br, req)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
			}
			var raw map[string]any
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"methods", "query_accounts", "header_accounts", "cookie_accounts", "body_accounts", "paths"} {
				if _, ok := raw[name].([]any); !ok {
					t.Errorf("%s is %#v, want a list", name, raw[name])
				}
			}
			var reading Reading
			if err := json.Unmarshal(body, &reading); err != nil {
				t.Fatal(err)
			}
			if reading.Parser != u.Name || reading.Method != "PUT" || !slices.Equal(reading.Methods, []string{"PUT"}) {
				t.Errorf("parser %q, method %q, methods %q", reading.Parser, reading.Method, reading.Methods)
			}
			if !slices.Contains(reading.Paths, "/echo") {
				t.Errorf("paths %q, want /echo among them", reading.Paths)
			}
			var echoed bool
			for name, values := range reading.Header {
				echoed = echoed || strings.Contains(strings.ToLower(name), "echo") && slices.Contains(values, "echoed")
			}
			if !echoed {
				t.Errorf("header %v lacks X-Echo: echoed", reading.Header)
			}
		})
	}
}

// TestMethods: every server answers any method its HTTP parser knows, HEAD
// without a body.
func TestMethods(t *testing.T) {
	for _, u := range All(t) {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "DELETE", "PATCH", "PROPFIND"} {
			conn, br := dial(t, u)
			resp, body := roundTrip(t, conn, br, request{method: method, target: "/m", header: []string{"Connection: close"}})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %s: %s", u.Name, method, resp.Status)
				continue
			}
			if method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("%s: HEAD answered with a body of %d bytes", u.Name, len(body))
				}
				continue
			}
			var reading Reading
			if err := json.Unmarshal(body, &reading); err != nil || reading.Method != method {
				t.Errorf("%s: %s read as %q (%v)", u.Name, method, reading.Method, err)
			}
		}
	}
}

// TestGarbage: what a parser cannot read leaves it answering, and reading
// the next request. A server may refuse a request outright (WEBrick a
// request target Ruby's URI parser rejects), but it must not stop.
func TestGarbage(t *testing.T) {
	multipartType, _ := form()
	bad := []request{
		{method: "GET", target: "/%zz/%C0%AF?accountId=%zz&a=%ff&%=&&=="},
		{method: "GET", target: "/?accountId=%C0%AF&accountId[=x&accountId]=y&a[b]=1&a=2"},
		{method: "POST", target: "/", header: []string{"Content-Type: application/json"}, body: `{"accountId": [1, {"x": "\ud800"}`},
		{method: "POST", target: "/", header: []string{"Content-Type: application/json"}, body: "\xff\xfe"},
		{method: "POST", target: "/", header: []string{multipartType}, body: "--broken\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"},
		{method: "POST", target: "/", header: []string{"Content-Type: multipart/form-data"}, body: "no boundary"},
		{method: "POST", target: "/", header: []string{urlencoded + "; charset=utf-9"}, body: "accountId=%ff%zz&&=&_method=%00"},
		{method: "POST", target: "/", header: []string{"Content-Type: ;;;"}, body: "\x00\x01"},
		{method: "POST", target: "/", header: []string{urlencoded, "Content-Encoding: gzip"}, body: "not gzip"},
	}
	for _, u := range All(t) {
		t.Run(u.Name, func(t *testing.T) {
			for _, req := range bad {
				req.header = append(req.header, "Connection: close")
				conn, br := dial(t, u)
				resp, body := roundTrip(t, conn, br, req)
				if resp.StatusCode == http.StatusOK {
					if err := json.Unmarshal(body, new(Reading)); err != nil {
						t.Errorf("%s %s: %v\n%s", req.method, req.target, err, body)
					}
				} else {
					t.Logf("%s %s refused by %s: %s", req.method, req.target, u.Name, resp.Status)
				}
				if r := read(t, u, request{method: "GET", target: "/?accountId=after"}); !slices.Contains(r.QueryAccounts, "after") {
					t.Fatalf("after %s %s: %+v", req.method, req.target, r)
				}
			}
		})
	}
}

// TestBodies: a body of up to 2 MiB is read whole, parsed or not, and the
// connection is then ready for the next request.
func TestBodies(t *testing.T) {
	const size = 2 << 20
	pad := strings.Repeat("x", size-len("accountId=big&pad="))
	bodies := []request{
		{method: "POST", target: "/", header: []string{urlencoded}, body: "accountId=big&pad=" + pad},
		{method: "POST", target: "/", header: []string{"Content-Type: text/plain"}, body: "accountId=big&pad=" + pad},
		{method: "DELETE", target: "/", header: []string{"Content-Type: application/octet-stream"}, body: "accountId=big&pad=" + pad, chunked: true},
	}
	for _, u := range All(t) {
		t.Run(u.Name, func(t *testing.T) {
			for _, req := range bodies {
				conn, br := dial(t, u)
				resp, body := roundTrip(t, conn, br, req)
				var reading Reading
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &reading) != nil {
					t.Fatalf("%s %s: %s\n%.300s", req.method, req.header, resp.Status, body)
				}
				if req.header[0] == urlencoded && !slices.Contains(reading.BodyAccounts, "big") {
					t.Errorf("%s: a 2 MiB form: body_accounts %q", req.header, reading.BodyAccounts)
				}
				if resp.Close {
					continue // the server closes after each request (php -S)
				}
				resp, body = roundTrip(t, conn, br, request{method: "GET", target: "/?accountId=next"})
				if err := json.Unmarshal(body, &reading); err != nil || !slices.Contains(reading.QueryAccounts, "next") {
					t.Errorf("%s: the request after the body: %s %v\n%.300s", req.header, resp.Status, err, body)
				}
			}
		})
	}
}
