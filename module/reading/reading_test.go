package reading

import (
	"errors"
	"io"
	"mime/multipart"
	"slices"
	"strings"
	"testing"
)

func TestNameReads(t *testing.T) {
	account, method := NewName("accountId"), NewName("_method")
	tests := []struct {
		n    Name
		yes  []string
		no   []string
		what string
	}{
		{account, []string{
			"accountId", "accountid", "ACCOUNTID", "accountI%64", "%61ccountId", "accountI%2564", // escapes, twice
			"account%C4%B1d",             // ı upper-cases to I
			"account%u0049d",             // %u escapes
			"+accountId", "%20accountId", // PHP drops leading spaces
			"accountId%00junk",                                                                           // PHP ends names at NUL
			"accountId[]", "accountId[0]", "accountId[a][b]", "accountId]", "[accountId]", "]]accountId", // arrays, Rack's brackets
			"accountId.x", "accountId%20", "accountId+", "%EF%BB%BFaccountId", "\ufeffaccountId",
			// Unicode white space around a name: str.strip() after decoding
			// as Latin-1 (Starlette, Tornado) or UTF-8 (Django).
			"%A0accountId", "accountId%A0", "%85accountId", "%C2%A0accountId", "accountId%E3%80%80",
			"%E2%80%A8accountId", "\u00a0accountId", "accountId\u2029",
		}, []string{
			"", "account", "accountIdx", "myaccountId", "account_id", "account-id", "accountI", "accountId%ZZ",
			"account%FFId", "x[accountId]", "account%EF%BC%A9d", // fullwidth I is not I
		}, "accountId"},
		{method, []string{
			"_method", "_METHOD", "%5Fmethod", "_m%65thod", ".method", "%2Emethod", "+method", "_method[]", "_method%00",
			"%01_method", "_method%1F", "%00_method%01", "%7F_method", // Tomcat trims control characters
		}, []string{
			"method", "__method", "_methods", "payment_method", "x_method", "_meth",
		}, "_method"},
		// PHP reads an unclosed "[" as "_": "ten[ant" is ten_ant.
		{NewName("ten_ant"), []string{"ten_ant", "ten[ant", "ten.ant", "ten ant", "ten%5Bant", "ten[ant[x"},
			[]string{"tenant", "ten]ant", "ten-ant", "ten[[ant"}, "ten_ant"},
	}
	for _, tt := range tests {
		for _, raw := range tt.yes {
			if !tt.n.Reads(raw) {
				t.Errorf("%q should read as %s", raw, tt.what)
			}
		}
		for _, raw := range tt.no {
			if tt.n.Reads(raw) {
				t.Errorf("%q should not read as %s", raw, tt.what)
			}
		}
	}
}

func TestQueryValues(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"", nil},
		{"a=1", nil},
		{"accountId=A", []string{"A"}},
		{"accountId", []string{""}},
		{"accountId=A&accountId=B", []string{"A", "B"}},
		{"x=1;accountId=B", []string{"B"}},                  // Rack splits on ;
		{"accountId=A;x=B", []string{"A;x=B", "A"}},         // Python and Go keep it in the value
		{"accountId=act%2D1", []string{"act%2D1", "act-1"}}, // as sent and decoded
		{"accountId[a=1]=B", []string{"1]=B", "B"}},         // qs splits after "]="
		{"AccountId=A&accountI%64=A", []string{"A", "A"}},   // same account, two names
		{"accountId=a+b", []string{"a+b", "a b"}},           // + is a space
		{"&&;;accountId=A;;&&", []string{"A"}},              // empty pairs; ";;accountId" names nothing
		{"accountId==A", []string{"=A"}},                    // first "="
		{"x=accountId&y=1", nil},                            // a value is not a name
		{"accountId%3DB=C", nil},                            // %3D is not "="
		{strings.Repeat("x=1&", 1000) + "accountId=Z", []string{"Z"}},
	}
	for _, tt := range tests {
		got := QueryValues(nil, tt.query, AccountParam)
		if !slices.Equal(got, tt.want) {
			t.Errorf("QueryValues(%.60q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestCookieValues(t *testing.T) {
	tenant := NewName("tenant")
	tests := []struct {
		fields []string
		want   []string
	}{
		{nil, nil},
		{[]string{"a=1"}, nil},
		{[]string{"tenant=A"}, []string{"A"}},
		{[]string{"a=1; tenant=A"}, []string{"A"}},
		{[]string{"tenant=A; tenant=B"}, []string{"A", "B"}}, // first or last wins
		{[]string{"tenant=A", "tenant=B"}, []string{"A", "B", "A, tenant=B", "A,", "B", "A", "B"}}, // one field per cookie, or folded
		{[]string{"Tenant=A"}, []string{"A"}},                                                      // names in any case
		{[]string{"x=1, tenant=B"}, []string{"B", "B"}},                                            // RFC 2965 splits on ","
		{[]string{"tenant=A, x=1"}, []string{"A, x=1", "A,", "A"}},                                 // others keep it; SimpleCookie keeps the ","
		{[]string{`tenant="A"`}, []string{`"A"`, "A"}},                                             // quotes kept or dropped
		{[]string{"tenant=act%2D1"}, []string{"act%2D1", "act-1"}},                                 // decoded or not
		{[]string{"tenant= A "}, []string{" A ", "A"}},                                             // white space around
		{[]string{"tenan%74=A"}, []string{"A"}},                                                    // PHP decodes names
		{[]string{"tenant[x]=A"}, []string{"A"}},                                                   // PHP arrays
		{[]string{"x=tenant"}, nil},                                                                // a value is not a name
		{[]string{";;, ;tenant=A;;"}, []string{"A"}},                                               // empty pairs
		// Python's SimpleCookie ends a pair at white space too, also
		// Latin-1's NEL and no-break space; not around "=".
		{[]string{"x=1 tenant=B"}, []string{"B"}},
		{[]string{`x="1" tenant=B`}, []string{"B"}},
		{[]string{"x=1\ttenant=B"}, []string{"B"}},
		{[]string{"x=1\xa0tenant=B"}, []string{"B"}},
		{[]string{"tenant=A x=1"}, []string{"A x=1", "A"}},
		{[]string{"tenant = A"}, []string{" A", "A"}},
		// Unicode white space around a name is dropped by str.strip().
		{[]string{"tenant=A; tenant\xa0=B"}, []string{"A", "B"}},
		{[]string{"\x85tenant=B"}, []string{"B"}},
		{[]string{"x=1; \u3000tenant=B"}, []string{"B"}},
	}
	for _, tt := range tests {
		got := CookieValues(nil, tt.fields, tenant)
		if !slices.Equal(got, tt.want) {
			t.Errorf("CookieValues(%q) = %q, want %q", tt.fields, got, tt.want)
		}
	}
	// PHP reads an unclosed "[" in a cookie's name as "_".
	if got := CookieValues(nil, []string{"ten[ant=B; tenant=C"}, NewName("ten_ant")); !slices.Equal(got, []string{"B"}) {
		t.Errorf("ten[ant read as ten_ant: %q, want [B]", got)
	}
}

func TestHeaderIs(t *testing.T) {
	for key, want := range map[string]bool{
		"X-Account-Id": true, "x-account-id": true, "X_Account_Id": true, "X.Account.Id": true, "X_account-ID": true,
		"X-Account-Ids": false, "X-Account": false, "XAccountId": false, "X Account Id": false,
	} {
		if got := HeaderIs(key, AccountHeader); got != want {
			t.Errorf("HeaderIs(%q) = %v", key, got)
		}
	}
}

func TestOverrideMethods(t *testing.T) {
	for v, want := range map[string]string{
		"DELETE": "DELETE", "delete": "DELETE", " PATCH\t": "PATCH", "VERSION-CONTROL": "VERSION-CONTROL",
		"": "", "GET, DELETE": "", "DEL ETE": "", "DEL%45TE": "", "DELETE\x00": "", strings.Repeat("A", 33): "",
	} {
		_, upper, ok := OverrideMethods(v)
		if upper != want || ok != (want != "") {
			t.Errorf("OverrideMethods(%q) = %q, %v; want %q", v, upper, ok, want)
		}
	}
}

func TestBodyKinds(t *testing.T) {
	tests := []struct {
		ct       []string
		kinds    Kinds
		boundary string
		bad      bool
	}{
		{nil, URLEncoded, "", false},
		{[]string{""}, URLEncoded, "", false},
		{[]string{"application/x-www-form-urlencoded"}, URLEncoded, "", false},
		{[]string{"Application/X-WWW-Form-Urlencoded; charset=UTF-8"}, URLEncoded, "", false},
		{[]string{"application/x-www-form-urlencoded,text/plain"}, URLEncoded, "", false}, // PHP cuts at ","
		{[]string{"multipart/form-data; boundary=xyz"}, Multipart, "xyz", false},
		{[]string{`multipart/mixed; boundary="a.b"`}, Multipart, "a.b", false},
		{[]string{`multipart/mixed; boundary="a b"`}, 0, "", true},
		{[]string{`multipart/form-data; boundary="ab;c"`}, 0, "", true},
		{[]string{`multipart/form-data; boundary="a\\b"`}, 0, "", true},
		{[]string{`multipart/form-data; boundary = "abc"`}, Multipart, "abc", false},
		{[]string{"application/json"}, JSON, "", false},
		{[]string{"application/problem+json"}, JSON, "", false},
		{[]string{"text/plain; x=/json"}, JSON, "", false}, // Laravel's isJson reads the whole header
		{[]string{"text/plain"}, 0, "", false},
		{[]string{"application/octet-stream"}, 0, "", false},
		{[]string{"a/b", "c/d"}, 0, "", true},
		{[]string{"application/x-www-form-urlencoded; charset=utf-16"}, 0, "", true},
		{[]string{"application/x-www-form-urlencoded; charset=ibm037"}, 0, "", true},
		{[]string{"application/json; charset=utf-8; charset=utf-7"}, 0, "", true},
		{[]string{"multipart/form-data"}, 0, "", true},
		{[]string{"multipart/form-data; boundary=a; xboundary=b"}, 0, "", true},
		{[]string{"multipart/form-data; boundary=a; boundary=b"}, 0, "", true},
		{[]string{"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"}, Multipart, "----WebKitFormBoundary7MA4YWxkTrZu0gW", false},
		{[]string{`multipart/form-data; boundary="xboundary=y"`}, 0, "", true},
		{[]string{"multipart/form-data; boundaryx=xyz; boundary=abc"}, 0, "", true}, // PHP takes the first
		{[]string{"multipart/form-data; boundary=abc; boundary*=xyz"}, 0, "", true}, // Werkzeug reads boundary*
		{[]string{"multipart/form-data; x=boundary; boundary=abc"}, 0, "", true},
		{[]string{"multipart/form-data; Boundary=xboundaryx"}, 0, "", true}, // PHP finds the value's first
		{[]string{`Multipart/Form-Data; BOUNDARY="b0undary"`}, Multipart, "b0undary", false},
		{[]string{"text/plain; x=multipart; boundary=abc"}, Multipart, "abc", false}, // formidable
		{[]string{"text/plain; x=json"}, JSON, "", false},                            // formidable
		{[]string{"application/x-www-form-urlencodedx"}, URLEncoded, "", false},
		{[]string{`multipart/form-data; boundary="===============1234=="`}, Multipart, "===============1234==", false},
	}
	for _, tt := range tests {
		kinds, boundary, err := BodyKinds(tt.ct)
		var u Unreadable
		if tt.bad != (err != nil) || err != nil && !errors.As(err, &u) || kinds != tt.kinds || boundary != tt.boundary {
			t.Errorf("BodyKinds(%q) = %v, %q, %v", tt.ct, kinds, boundary, err)
		}
	}
}

func TestBodyValues(t *testing.T) {
	const b = "XyZ"
	part := func(disposition, value string) string {
		return "--" + b + "\r\nContent-Disposition: " + disposition + "\r\n\r\n" + value + "\r\n"
	}
	tests := []struct {
		kinds Kinds
		body  string
		want  []string
		bad   bool
	}{
		{URLEncoded, "a=1&_method=DELETE", []string{"DELETE"}, false},
		{URLEncoded, "a=1;%2Emethod=PUT", []string{"PUT"}, false},
		{URLEncoded, "\ufeff_method=PUT", []string{"PUT"}, false},
		{Multipart, "--" + b + "\r\nX-A: Content-Disposition: x; name=_method\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nDELETE\r\n--" + b + "--", nil, true},
		{Multipart, "--" + b + "\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="x"`, "1\n--"+b+"\nContent-Disposition: form-data; name=\"_method\"\n\nDELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="x"`, "1--"+b+"\r\n --"+strings.ToLower(b)) + "--" + b + "--", nil, true},
		{Multipart, "--" + b + "\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nPUT\r\n--" + b + "--", []string{"PUT"}, false},
		{Multipart, part(`form-data; name="a"`, "1") + part(`form-data; name="_method"`, "DELETE") + "--" + b + "--\r\n", []string{"DELETE"}, false},
		{Multipart, part(`form-data; name="f"; filename="_method"`, "x") + "--" + b + "--", nil, false},
		{Multipart, part(`form-data; name=_METHOD`, "PUT") + "--" + b + "--", []string{"PUT"}, false},
		{Multipart, part("form-data; name=\"\x01_method\x02\"", "PUT") + "--" + b + "--", []string{"PUT"}, false}, // Tomcat trims
		{Multipart, "preamble\r\n" + part(`form-data; name="_method"`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, strings.ReplaceAll(part(`form-data; name="_method"`, "DELETE")+"--"+b+"--", "\r\n", "\n"), nil, true},
		{Multipart, part(`form-data; name="a"; name="_method"`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; name*=UTF-8''_method`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="=?utf-8?q?_method?="`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="_meth\od"`, "DELETE") + "--" + b + "--", nil, true}, // Python unescapes, PHP does not
		{Multipart, part(`form-data; name='_method'`, "DELETE") + "--" + b + "--", nil, true},  // PHP reads single quotes
		{Multipart, part(`form-data; name=x; filename='a'`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; filename="a\"; name=_method"; name=x`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data;`+strings.Repeat(" ", 5077)+`name=_methodxyz; filename="a:b"`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="f"; filename*=UTF-8''%C3%A9.txt`, "x") + "--" + b + "--", nil, false},
		{Multipart, part(`form-data; name="f"; filename="a"; filename*=UTF-8''b`, "x") + "--" + b + "--", nil, false}, // .NET
		{Multipart, part(`form-data; name="_me"; name*1=thod`, "DELETE") + "--" + b + "--", nil, true},                // Werkzeug joins the pieces
		{Multipart, part(`form-data; name="f"; filename="a\"b.txt"`, "x") + "--" + b + "--", nil, false},              // Go's writer escapes quotes
		{Multipart, "--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Length: 1\r\n\r\nx\r\n--" + b + "--", nil, false},
		{Multipart, "--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-ID: _method\r\n\r\nx\r\n--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="f"; filename="C:\x\a.txt"`, "x") + "--" + b + "--\r\n\r\n", nil, false},
		{Multipart, "", nil, false},
		{JSON, "", nil, false},
		{JSON, " \r\n\t", nil, false},
		{Multipart, part(`form-data; xname="_method"; name="a"`, "DELETE") + "--" + b + "--", nil, true},
		{Multipart, "--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--" + b + "--", nil, true},
		{Multipart, "--" + b + "\r\nContent-Disposition: form-data;\r\n name=\"_method\"\r\n\r\nDELETE\r\n--" + b + "--", nil, true},
		{Multipart, "--" + b + "\r\nContent-Disposition: form-data; name=\"_method\"\r\nContent-Transfer-Encoding: base64\r\n\r\nREVMRVRF\r\n--" + b + "--", nil, true},
		{Multipart, part(`form-data; name="_method"`, "DELETE") + "--" + b + "--trailing", nil, true},
		{Multipart, part(`form-data; name="_method"`, "DELETE"), nil, true},
		{JSON, `{"a":{"_method":"DELETE"},"_method":"PUT"}`, []string{"PUT"}, false},
		{JSON, `{"_method":"PUT","_method":"DELETE"}`, []string{"PUT", "DELETE"}, false},
		{JSON, `{"\u005fmethod":"DELETE"}`, []string{"DELETE"}, false},
		{JSON, `[{"_method":"DELETE"}]`, nil, false},
		{JSON, `"x"`, nil, false},
		{JSON, `{"_method":["DELETE"]}`, nil, true},
		{JSON, `{"_method":"PUT"`, nil, true},
		{JSON, `{} {}`, nil, true},
		{JSON, "\ufeff{}", nil, true},
	}
	for _, tt := range tests {
		got, err := BodyValues(nil, []byte(tt.body), tt.kinds, b, MethodParam)
		if tt.bad != (err != nil) || !tt.bad && !slices.Equal(got, tt.want) {
			t.Errorf("BodyValues(%v, %q) = %q, %v", tt.kinds, tt.body, got, err)
		}
	}
}

// TestQueryValuesAllocatesNothing: reading the account of a plain query
// costs no allocation (the package's promise for the common case).
func TestQueryValuesAllocatesNothing(t *testing.T) {
	const q = "page=2&per_page=50&sort=created_at&accountId=act-1a2b3c4d&filter=name%3Dprod"
	var buf [4]string
	if n := testing.AllocsPerRun(100, func() { QueryValues(buf[:0], q, AccountParam) }); n != 0 {
		t.Fatalf("QueryValues allocates %v times", n)
	}
}

func BenchmarkQueryValues(b *testing.B) {
	const q = "page=2&per_page=50&sort=created_at&accountId=act-1a2b3c4d&filter=name%3Dprod"
	b.ReportAllocs()
	var buf [4]string
	for b.Loop() {
		if v := QueryValues(buf[:0], q, AccountParam); len(v) != 1 {
			b.Fatal(v)
		}
	}
}

// FuzzMultipartAgreesWithGo: whenever a multipart body is read without
// error, every _method field Go's own multipart reader finds in it is among
// the values read (the gateway's reading is never narrower than Go's).
func FuzzMultipartAgreesWithGo(f *testing.F) {
	const b = "XyZ"
	f.Add("--" + b + "\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--" + b + "--\r\n")
	f.Add("--" + b + "\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + b + "\r\nContent-Disposition: form-data; name=_METHOD\r\n\r\nPUT\r\n--" + b + "--")
	f.Fuzz(func(t *testing.T, body string) {
		vals, err := BodyValues(nil, []byte(body), Multipart, b, MethodParam)
		if err != nil {
			return
		}
		mr := multipart.NewReader(strings.NewReader(body), b)
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			if MethodParam.Reads(p.FormName()) {
				v, err := io.ReadAll(p)
				if err != nil {
					return
				}
				if !slices.Contains(vals, string(v)) {
					t.Fatalf("Go reads _method %q (field %q); the reading has %q", v, p.FormName(), vals)
				}
			}
		}
	})
}
