package policy

import (
	"net/url"
	"strings"
	"testing"
)

func TestPatternMatching(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"/api/clusters", []string{"/api/clusters"}, []string{"/api/clusters/x", "/api", "/api/clustersx", "/API/clusters"}},
		{"/api/clusters/*", []string{"/api/clusters/a", "/api/clusters/a/b/c"}, []string{"/api/clusters", "/api/clustersx/a"}},
		{"/api/**", []string{"/api/a", "/api/a/b"}, []string{"/api", "/apix/a"}},
		{"/api**", []string{"/api", "/apix", "/api/a/b"}, []string{"/ap", "/x/api"}},
		{"/api/*/nodes", []string{"/api/c1/nodes", "/api/x-y.z/nodes"}, []string{"/api/a/b/nodes", "/api/c1/nodes/n1", "/api/nodes"}},
		{"/api/c*-prod/nodes", []string{"/api/c-prod/nodes", "/api/cluster-prod/nodes"}, []string{"/api/cluster-dev/nodes", "/api/c/x-prod/nodes"}},
		{"/*", []string{"/", "/a", "/a/b"}, nil},
		{"/", []string{"/"}, []string{"/a"}},
		{"/a*b*c", []string{"/abc", "/aXbYc", "/abbc", "/abcbc"}, []string{"/ab", "/acb", "/aXb/c"}},
	}
	for _, tt := range tests {
		pat, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		for _, p := range tt.yes {
			if !pat.match(p, false) {
				t.Errorf("%s should match %s", tt.pattern, p)
			}
		}
		for _, p := range tt.no {
			if pat.match(p, false) {
				t.Errorf("%s should not match %s", tt.pattern, p)
			}
		}
	}
}

func TestBadPatterns(t *testing.T) {
	for _, p := range []string{"", "api", "/api/**/x", "/a//b", "/a/./b", "/a/../b", "/api/", strings.Repeat("/*", MaxWildcards+1)} {
		if ValidatePattern(p) == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
}

// allowAPIDenyAdmin allows everything under /api except /api/admin.
var allowAPIDenyAdmin = []Statement{
	{Effect: "allow", Methods: []string{"GET", "POST"}, Paths: []string{"/api/**"}},
	{Effect: "deny", Methods: []string{"*"}, Paths: []string{"/api/admin", "/api/admin/*"}},
}

func allows(s *Set, method, rawPath string) bool {
	u, err := url.ParseRequestURI(rawPath) // as net/http parses request targets
	if err != nil {
		return false
	}
	readings, ok := Readings(u.Path, u.EscapedPath())
	return ok && s.Allows(method, readings)
}

// TestPathTricks: none of the usual spellings turns a denied path into an
// allowed one.
func TestPathTricks(t *testing.T) {
	s := Compile(allowAPIDenyAdmin)
	if !allows(s, "GET", "/api/clusters") || !allows(s, "POST", "/api/clusters/c1") {
		t.Fatal("plain allowed paths refused")
	}
	denied := []string{
		"/api/admin",
		"/api/admin/",
		"/api/admin/users",
		"/api//admin",
		"/api/./admin",
		"/api/public/../admin",
		"/api/public/../admin/users",
		"/api/public/%2e%2e/admin",
		"/api/public/%2E%2E/admin",
		"/api/public%2F..%2Fadmin",
		"/api/public%2f..%2fadmin",
		"/api/%61dmin",
		"/api/public/%252e%252e/admin",
		"/api/public/%25252e%25252e/admin",
		"/api\\admin",
		"/api/public\\..\\admin",
		"/API/ADMIN",
		"/api/Admin/users",
		"/api/ADMIN%2Fusers",
		"//api/admin",
		"/./api/admin",
		"/../api/admin",
		"/api/admin;x=1/users",
		"/api/public/..;/admin",
		"/api/adm%C4%B1n/users", // ı: "I" in upper case (Java's equalsIgnoreCase)
		"/api/ADM%C4%B0N",       // İ
		"/api/admin.json",       // a format suffix (Rails)
		"/api/admin/users.json", //
		"/api/%E2%84%AAadmin/x", // not admin, but the Kelvin sign folds to k: stays allowed below
	}
	denied = denied[:len(denied)-1]
	for _, p := range denied {
		if allows(s, "GET", p) {
			t.Errorf("GET %s allowed", p)
		}
	}
	// Methods: deny matches any case; allow only the exact method.
	if allows(s, "DELETE", "/api/clusters") || allows(s, "get", "/api/clusters") {
		t.Error("method outside the allow list admitted")
	}
	deny := Compile([]Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/**"}},
		{Effect: "deny", Methods: []string{"DELETE"}, Paths: []string{"/**"}},
	})
	if allows(deny, "delete", "/x") || allows(deny, "Delete", "/x") || !allows(deny, "GET", "/x") {
		t.Error("deny on a method must hold whatever its case")
	}
	// Allow patterns are exact: a case variant of an allowed path is not
	// allowed (it could be another resource upstream).
	if allows(Compile([]Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/x"}}}), "GET", "/API/X") {
		t.Error("allow matched a case variant")
	}
	// An encoded slash inside an allowed prefix stays allowed.
	files := Compile([]Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/files/*"}}})
	if !allows(files, "GET", "/api/files/a%2Fb") {
		t.Error("encoded slash under an allowed prefix refused")
	}
	if allows(s, "GET", "/api/"+strings.Repeat("a", MaxRequestPath)) {
		t.Error("over-long path judged")
	}
	// Lenient readings widen denials only.
	for _, p := range []string{"/api/administrators", "/api/admins.json", "/api/files/report.pdf", "/api/.admin"} {
		if !allows(s, "GET", p) {
			t.Errorf("GET %s refused", p)
		}
	}
}

func TestFailClosed(t *testing.T) {
	for _, stmts := range [][]Statement{
		nil,
		{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"api"}}},
		{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/**"}}, {Effect: "permit", Methods: []string{"GET"}, Paths: []string{"/x"}}},
		{{Effect: "allow", Methods: nil, Paths: []string{"/**"}}},
	} {
		if allows(Compile(stmts), "GET", "/x") {
			t.Errorf("%+v allowed a request", stmts)
		}
	}
	var nilSet *Set
	if nilSet.Allows("GET", []string{"/"}) {
		t.Error("nil set allowed")
	}
}

func TestUnionDenyWins(t *testing.T) {
	a := []Statement{{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/**"}}}
	b := []Statement{{Effect: "deny", Methods: []string{"POST"}, Paths: []string{"/api/billing/*"}}}
	s := Compile(append(a, b...))
	if !allows(s, "POST", "/api/clusters/x") || allows(s, "POST", "/api/billing/x") || !allows(s, "GET", "/api/billing/x") {
		t.Fatal("union of policies wrong")
	}
}

// variants spells a path in ways upstream servers may read as the same path.
func variants(p string) []string {
	out := []string{p, strings.ToUpper(p), p + "/", "/." + p, strings.Replace(p, "/", "//", 1)}
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		out = append(out, p[:i]+"/x/.."+p[i:], p[:i]+"/x/%2e%2e"+p[i:], p[:i]+"%2F"+p[i+1:], p[:i]+"\\"+p[i+1:])
	}
	if len(p) > 1 {
		out = append(out, "/"+url.PathEscape(p[1:2])+p[2:], "/%"+strings.ToUpper(hex2(p[1]))+p[2:])
	}
	return out
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func FuzzDeniedStaysDenied(f *testing.F) {
	for _, s := range []string{"/api/admin", "/api/admin/users", "/api/clusters", "/api/a/b"} {
		f.Add(s)
	}
	s := Compile(allowAPIDenyAdmin)
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		// Whatever the input, judging it must not panic.
		allows(s, "GET", p)
		// A path that is refused stays refused however it is spelled.
		clean := Clean(p)
		if allows(s, "GET", clean) {
			return
		}
		for _, v := range variants(clean) {
			if allows(s, "GET", v) {
				t.Fatalf("GET %s allowed, a variant of refused %s", v, clean)
			}
		}
	})
}

func BenchmarkAllows(b *testing.B) {
	s := Compile(allowAPIDenyAdmin)
	b.ReportAllocs()
	for b.Loop() {
		readings, _ := Readings("/api/clusters/c1/nodes", "/api/clusters/c1/nodes")
		if !s.Allows("GET", readings) {
			b.Fatal("refused")
		}
	}
}

// TestHeadIsGet: HEAD is judged as HEAD and as GET.
func TestHeadIsGet(t *testing.T) {
	s := Compile([]Statement{
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/any/**"}},
		{Effect: "deny", Methods: []string{"GET"}, Paths: []string{"/any/secret/*"}},
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/reads/**"}},
		{Effect: "allow", Methods: []string{"HEAD"}, Paths: []string{"/heads/**"}},
		{Effect: "deny", Methods: []string{"head"}, Paths: []string{"/any/nohead"}},
	})
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"HEAD", "/any/secret/x", false}, // a deny of GET denies HEAD
		{"head", "/any/secret/x", false},
		{"GET", "/any/secret/x", false},
		{"HEAD", "/any/open", true},
		{"HEAD", "/reads/x", true}, // an allow of GET admits HEAD
		{"GET", "/reads/x", true},
		{"HEAD", "/heads/x", true},
		{"GET", "/heads/x", false}, // HEAD admits no GET
		{"HEAD", "/any/nohead", false},
		{"GET", "/any/nohead", true},
		{"POST", "/reads/x", false},
	} {
		if got := allows(s, c.method, c.path); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
