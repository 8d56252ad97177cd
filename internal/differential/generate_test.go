package differential

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// A request the generator makes: sent byte for byte as written.
type request struct {
	user   string // whose token: viewer, jobs or orgviewer
	method string
	target string // the request target, raw
	header [][2]string
	body   string
}

func (r request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.user, r.method, r.target)
	for _, h := range r.header {
		fmt.Fprintf(&b, " [%s: %s]", h[0], h[1])
	}
	if r.body != "" {
		fmt.Fprintf(&b, " body %q", r.body)
	}
	return b.String()
}

// Spellings, one list per fact the gateway judges.
var (
	// paths under the policy of the jobs user: GET anywhere under /api,
	// POST under /api/jobs, anything under /api/scratch; never /api/admin
	// and below, nor /api/clusters/secret.
	paths = []string{
		"/api/clusters", "/api/jobs/nightly", "/api/scratch/x", "/api/admin", "/api/admin/", "/api/admin/users",
		"/api/Admin/users", "/api/ADMIN", "/api/%61dmin/users", "/api/admin;x=1/users", "/api/admin;/users",
		"/api/clusters/secret", "/api/clusters/secret;jsessionid=1", "/api/clusters/secret/", "/api/clusters/x/..;/secret",
		"/api/jobs/../admin/users", "/api/jobs/%2e%2e/admin/users", "/api/jobs%2F..%2Fadmin%2Fusers",
		"/api/jobs/%252e%252e/admin/users", "/api//admin/users", "/api/./admin/users", "/api/jobs/..%5Cadmin%5Cusers",
		"/api/jobs/x/..\\..\\admin", "/api/scratch/..;/admin/x", "/api/scratch/%2e%2e;/admin", "/api/scratch;/../admin/x",
		"/api/jobs/nightly;_method=DELETE", "/api/jobs/%2E%2E/%2E%2E/api/admin", "/api/scratch/%2e%2e%2f%2e%2e%2fapi%2fadmin",
		"/api/jobs/nightly/", "/api/jobs", "/api/scratch", "/api/scratch/..%2f..%2fapi%2fadmin%2fx",
	}
	// accountNames are spellings some framework reads as accountId.
	accountNames = []string{
		"accountId", "AccountId", "ACCOUNTID", "accountid", "accountI%64", "%61ccountId", "%41ccountId", "account%C4%B1d",
		"account%u0049d", "accountId[]", "accountId[0]", "accountId[x]", "accountId[x][y]", "[accountId]", "]accountId",
		"+accountId", "%20accountId", "accountId%00", "accountId%00x", "accountId.x", "accountI%2564", "accountId%5B%5D",
		"account%49d", "ACCOUNT%C4%B1D", "accountId%20", "accountId[",
	}
	// accountForms place a spelling in a query; NAME and VAL are
	// replaced.
	accountForms = []string{
		"NAME=VAL", "accountId=ACT1&NAME=VAL", "accountId=ACT1;NAME=VAL", "x=1;NAME=VAL", "NAME=VAL&accountId=ACT1",
		"NAME=VAL;x=1", "NAME=VAL&NAME=VAL", "a=b&NAME=VAL&c=d",
	}
	// cookieNames are spellings of the accountId cookie's name.
	cookieNames = []string{"accountId", "AccountId", "accountid", "accountI%64", "accountId[]", "accountId[x]", " accountId",
		"accountId ", "account.Id", "accountId%00", "$accountId", "\xa0accountId", "accountId\xa0", "\x85accountId",
		"\xc2\xa0accountId", "accountId\u3000"}
	// cookieForms place a cookie in Cookie fields ("|" starts another
	// field); NAME and VAL are replaced.
	cookieForms = []string{
		"NAME=VAL", "accountId=ACT1; NAME=VAL", "NAME=VAL; accountId=ACT1", "x=1, NAME=VAL", "NAME=VAL, x=1",
		"accountId=ACT1|NAME=VAL", "NAME=VAL|accountId=ACT1", "NAME = VAL", "NAME=VAL;NAME=VAL", "x=\"a;NAME=VAL\"",
		"x=1 NAME=VAL", "x=\"1\" NAME=VAL", "accountId=ACT1 NAME=VAL", "accountId=ACT1\xa0NAME=VAL", "x=1\tNAME=VAL",
	}
	overrideHeaders = []string{"X-HTTP-Method-Override", "x-http-method-override", "X-HTTP-Method", "X-Method-Override"}
	overrideValues  = []string{"DELETE", "delete", " PUT", "GET, DELETE", "DELETE, GET", "GET", "POST", "PATCH", "get", "HEAD", "head"}
	methodNames     = []string{
		"_method", "%5Fmethod", ".method", "_METHOD", "_m%65thod", "+_method", "%20_method", "_method[]", "%2Emethod",
		"%5Fm%65thod", "_Method", "[_method]", "_method%00", "%5F%6D%65%74%68%6F%64",
	}
	methodValues  = []string{"DELETE", "put", "GET", "POST", "DEL%45TE", "delete+", "HEAD"}
	realMethods   = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}
	formTypes     = []string{"application/x-www-form-urlencoded", "", "application/x-www-form-urlencoded; charset=UTF-8", "APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencoded, text/plain", "text/plain", "application/octet-stream"}
	jsonTypes     = []string{"application/json", "application/vnd.api+json", "application/json; charset=utf-8", "text/plain; x=/json"}
	connectionRaw = "X-Tokengate-Account-Id, X-Tokengate-User-Type, X-Tokengate-Role, Content-Type, X-Account-Id"
)

// generate returns every request of the run: each fact's spellings with
// the others plain, then random mixtures of several (seeded, so every run
// sends the same).
func generate(act1, act2 string) []request {
	var out []request
	add := func(r request) { out = append(out, r) }
	accountValues := []string{act1, act2, strings.Replace(act1, "-", "%2D", 1), "", strings.ToUpper(act1)}

	// Paths, under every user and a few methods.
	for _, user := range []string{"viewer", "jobs", "orgviewer"} {
		for _, p := range paths {
			for _, m := range []string{"GET", "POST", "DELETE"} {
				add(request{user: user, method: m, target: p + "?accountId=" + act1})
			}
		}
	}
	// Accounts.
	for _, user := range []string{"viewer", "orgviewer"} {
		for _, name := range accountNames {
			for _, form := range accountForms {
				for _, val := range accountValues {
					q := strings.NewReplacer("NAME", name, "VAL", val, "ACT1", act1).Replace(form)
					add(request{user: user, method: "GET", target: "/api/clusters?" + q})
				}
			}
		}
		for _, hv := range accountValues {
			for _, q := range []string{"", "accountId=" + act1, "AccountId=" + act2, "accountId=" + act2} {
				add(request{user: user, method: "GET", target: "/api/clusters?" + q, header: [][2]string{{"X-Account-Id", hv}}})
				add(request{user: user, method: "GET", target: "/api/clusters?" + q, header: [][2]string{{"X-Account-Id", act1}, {"X-Account-Id", hv}}})
			}
		}
	}
	// Accounts in cookies, on the route that reads the accountId cookie:
	// every spelling of the name, in every place in one or two Cookie
	// fields, beside the default sources.
	for _, user := range []string{"viewer", "orgviewer"} {
		for _, name := range cookieNames {
			for _, form := range cookieForms {
				for _, val := range slices.Concat(accountValues, []string{`"` + act1 + `"`, `"` + act2 + `"`, " " + act2}) {
					var header [][2]string
					for field := range strings.SplitSeq(strings.NewReplacer("NAME", name, "VAL", val, "ACT1", act1).Replace(form), "|") {
						header = append(header, [2]string{"Cookie", field})
					}
					add(request{user: user, method: "GET", target: "/ck/clusters", header: header})
				}
			}
		}
		for _, q := range []string{"?accountId=" + act2, "?AccountId=" + act1} {
			add(request{user: user, method: "GET", target: "/ck/clusters" + q, header: [][2]string{{"Cookie", "accountId=" + act1}}})
		}
		add(request{user: user, method: "GET", target: "/ck/clusters", header: [][2]string{{"Cookie", "accountId=" + act1}, {"X-Account-Id", act2}}})
	}
	// Method overrides: headers and the query, on every real method; and
	// on a path the policy user may not GET, where HEAD is GET.
	for _, user := range []string{"viewer", "jobs"} {
		for _, target := range []string{"/api/jobs/nightly?accountId=" + act1, "/api/clusters/hidden?accountId=" + act1,
			"/api/scratch/hidden?accountId=" + act1} {
			for _, m := range []string{"GET", "POST", "PUT", "HEAD"} {
				for _, h := range overrideHeaders {
					for _, v := range overrideValues {
						add(request{user: user, method: m, target: target, header: [][2]string{{h, v}}})
					}
				}
				for _, name := range methodNames {
					for _, v := range methodValues {
						add(request{user: user, method: m, target: target + "&" + name + "=" + v})
						add(request{user: user, method: m, target: target + ";" + name + "=" + v})
					}
				}
			}
		}
	}
	// Method overrides in bodies, for the user whose policy allows POST
	// but not DELETE or PUT on /api/jobs.
	bodies := func(name, v string) []string {
		return []string{name + "=" + v, "a=1&" + name + "=" + v, "a=1;" + name + "=" + v, name + "=POST&" + name + "=" + v}
	}
	for _, ct := range formTypes {
		for _, name := range methodNames {
			for _, v := range []string{"DELETE", "put", "POST", "HEAD"} {
				for _, body := range bodies(name, v) {
					r := request{user: "jobs", method: "POST", target: "/api/jobs/nightly", body: body}
					if ct != "" {
						r.header = [][2]string{{"Content-Type", ct}}
					}
					add(r)
				}
			}
		}
	}
	for _, ct := range jsonTypes {
		for _, body := range []string{`{"_method":"DELETE"}`, `{"a":1,"_method":"put"}`, `{"_method":"POST","_method":"DELETE"}`,
			`{"\u005fmethod":"DELETE"}`, `{"_METHOD":"DELETE"}`, `{"_method":"POST"}`, `[{"_method":"DELETE"}]`, `{"_method":["DELETE"]}`, `_method=DELETE`} {
			add(request{user: "jobs", method: "POST", target: "/api/jobs/nightly", body: body, header: [][2]string{{"Content-Type", ct}}})
		}
	}
	const boundary = "b0undary"
	part := func(name, value string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	for _, ct := range []string{"multipart/form-data; boundary=" + boundary, "multipart/mixed; boundary=" + boundary, "Multipart/Form-Data; BOUNDARY=\"" + boundary + "\""} {
		for _, name := range []string{"_method", "_METHOD", ".method", "_method[]", " _method"} {
			for _, v := range []string{"DELETE", "put", "POST"} {
				body := part("a", "1") + part(name, v) + "--" + boundary + "--\r\n"
				add(request{user: "jobs", method: "POST", target: "/api/jobs/nightly", body: body, header: [][2]string{{"Content-Type", ct}}})
				add(request{user: "jobs", method: "POST", target: "/api/jobs/nightly", body: strings.ReplaceAll(body, "\r\n", "\n"), header: [][2]string{{"Content-Type", ct}}})
			}
		}
	}

	// Multipart and form bodies a black-box attack used to make Rack, PHP
	// or Express read DELETE while the gateway read POST.
	for _, c := range [][2]string{
		{"multipart/form-data; boundary=abc", "--abc\r\nX-A: Content-Disposition: x; name=_method\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Type: text/plain; a=\"Content-Disposition:; name=_method\"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nDELETE\r\n--abc--\r\n"},
		{`multipart/form-data; boundary="ab;c"`, "--ab;c\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--ab\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--ab--\r\n--ab;c--\r\n"},
		{`multipart/form-data; boundary="ab,c"`, "--ab,c\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--ab\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--ab--\r\n--ab,c--\r\n"},
		{`multipart/form-data; boundary="a\\b"`, "--a\\b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--a\\\\b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--a\\\\b--\r\n--a\\b--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\n--abc\nContent-Disposition: form-data; name=\"_method\"\n\nDELETE\n--abc--\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1--abc\r\n --abc\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"application/x-www-form-urlencoded", "\ufeff_method=DELETE"},
		{"application/x-www-form-urlencoded; charset=utf-8", "\ufeff_method=DELETE"},
		{"", "\ufeff_method=DELETE"},
		{"application/json", "\ufeff{\"_method\":\"DELETE\"}"},
		// Round three.
		{"multipart/form-data; boundaryx=xyz; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--xyz\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--xyz--\r\n\r\n--abc--\r\n"},
		{"multipart/form-data; x=boundary; y=xyz; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--xyz\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--xyz--\r\n\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"_me\"; name*1=thod\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Length: 1\r\n\r\n1\r\n--abc--\r\n"},
		// Round two.
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name='_method'\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name='.method'\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data;" + strings.Repeat(" ", 5077) + "name=_methodxyz; filename=\"a:b\"\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=abc", "--abc\r\nContent-Disposition: form-data; name=\"_meth\\od\"\r\n\r\nDELETE\r\n--abc--\r\n"},
		{"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"},
		{"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n\r\n"},
	} {
		r := request{user: "jobs", method: "POST", target: "/api/jobs/nightly", body: c[1]}
		if c[0] != "" {
			r.header = [][2]string{{"Content-Type", c[0]}}
		}
		add(r)
	}

	// Mixtures: several facts spelled oddly at once, and Connection naming
	// the identity tags.
	rng := rand.New(rand.NewPCG(8, 2026))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	for range 1500 {
		user := pick([]string{"viewer", "jobs", "orgviewer"})
		method := pick(realMethods)
		q := strings.NewReplacer("NAME", pick(accountNames), "VAL", pick(accountValues), "ACT1", act1).Replace(pick(accountForms))
		if rng.IntN(2) == 0 {
			q += pick([]string{"&", ";"}) + pick(methodNames) + "=" + pick(methodValues)
		}
		r := request{user: user, method: method, target: pick(paths) + "?" + q}
		if rng.IntN(2) == 0 {
			r.header = append(r.header, [2]string{pick(overrideHeaders), pick(overrideValues)})
		}
		if rng.IntN(3) == 0 {
			r.header = append(r.header, [2]string{"X-Account-Id", pick(accountValues)})
		}
		if rng.IntN(3) == 0 {
			r.header = append(r.header, [2]string{"Connection", connectionRaw})
		}
		if method == "POST" && rng.IntN(2) == 0 {
			ct := pick(append(formTypes[:len(formTypes):len(formTypes)], jsonTypes...))
			if ct != "" {
				r.header = append(r.header, [2]string{"Content-Type", ct})
			}
			if strings.Contains(ct, "json") {
				r.body = `{"_method":"` + pick(methodValues) + `"}`
			} else {
				r.body = pick(bodies(pick(methodNames), pick(methodValues)))
			}
		}
		add(r)
	}
	return out
}
