package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/tokengate/tokengate/module/reading"
)

// Statement allows or denies methods on paths.
type Statement struct {
	Effect  string   `json:"effect"`
	Methods []string `json:"methods"`
	Paths   []string `json:"paths"`
}

// Limits that keep matching cheap whatever the input.
const (
	// MaxWildcards bounds the "*" of one pattern.
	MaxWildcards = 16
	// MaxRequestPath is the longest request path a policy will judge;
	// longer ones are refused.
	MaxRequestPath = 8192
)

// ValidatePattern checks a path pattern's shape.
func ValidatePattern(p string) error {
	_, err := compilePattern(p)
	return err
}

// Set is the compiled union of a user's policy statements. A nil or empty
// Set allows nothing.
type Set struct {
	allow, deny []rule
	broken      bool // a statement failed to compile: allow nothing
}

type rule struct {
	methods []string // nil: any method
	paths   []pattern
	index   int // the statement's position in what Compile was given
}

// Compile builds a Set from statements. A statement that does not compile
// makes the whole set allow nothing: policies fail closed.
func Compile(stmts []Statement) *Set {
	s := &Set{}
	for i, st := range stmts {
		r := rule{index: i}
		for _, m := range st.Methods {
			if m == "*" {
				r.methods = nil
				break
			}
			r.methods = append(r.methods, m)
		}
		if len(st.Methods) == 0 || len(st.Paths) == 0 {
			s.broken = true
		}
		for _, p := range st.Paths {
			pat, err := compilePattern(p)
			if err != nil {
				s.broken = true
				continue
			}
			r.paths = append(r.paths, pat)
		}
		switch st.Effect {
		case "allow":
			s.allow = append(s.allow, r)
		case "deny":
			s.deny = append(s.deny, r)
		default:
			s.broken = true
		}
	}
	return s
}

// Allows reports whether the set allows method on every one of the path
// readings (see Readings).
//
// HEAD is judged as HEAD and as GET: Express, Laravel, Rails and Go's
// ServeMux run the GET handler for a HEAD request, with its side effects
// and its headers, so a deny of GET denies HEAD, and an allow of GET
// admits it (as an allow of HEAD does). Any letter case of "head" counts,
// as deny statements match methods in any case.
func (s *Set) Allows(method string, readings []string) bool {
	ok, _ := s.AllowedBy(method, readings)
	return ok
}

// AllowedBy is Allows, also naming the statement that allowed method on
// the first reading: its position in what Compile was given (-1 when not
// allowed). It costs what Allows costs.
func (s *Set) AllowedBy(method string, readings []string) (bool, int) {
	if s == nil || s.broken || len(readings) == 0 {
		return false, -1
	}
	head := strings.EqualFold(method, http.MethodHead)
	by := -1
	for i, p := range readings {
		if s.denies(method, p) || head && s.denies(http.MethodGet, p) {
			return false, -1
		}
		at := s.allowsOne(method, p)
		if at < 0 && head {
			at = s.allowsOne(http.MethodGet, p)
		}
		if at < 0 {
			return false, -1
		}
		if i == 0 {
			by = at
		}
	}
	return true, by
}

// allowsOne returns the position of the first allow statement matching
// method on p, or -1.
func (s *Set) allowsOne(method, p string) int {
	for i := range s.allow {
		if s.allow[i].matches(method, p, false) {
			return s.allow[i].index
		}
	}
	return -1
}

// AllowsEveryMethod reports whether the set allows any method whatever on
// every one of the path readings: some allow statement for "*" matches
// each and no deny statement matches any, whatever its methods.
func (s *Set) AllowsEveryMethod(readings []string) bool {
	if s == nil || s.broken || len(readings) == 0 {
		return false
	}
	for _, p := range readings {
		if s.denies("", p) {
			return false
		}
		allowed := false
		for i := range s.allow {
			if s.allow[i].methods == nil && s.allow[i].matchesPath(p, false) {
				allowed = true
				break
			}
		}
		if !allowed {
			return false
		}
	}
	return true
}

// denies reports whether a deny statement matches method (any method when
// empty) on the path p read leniently: letters folded as the most lenient
// upstream folds them (reading.Fold: "admın" is "admin" to Java's
// equalsIgnoreCase), and also without the extension of its last segment
// ("/x/admin.json" is "/x/admin" to routers that take a format suffix).
func (s *Set) denies(method, p string) bool {
	folded := reading.Fold(p)
	variants := [2]string{folded, withoutExtension(folded)}
	for i := range s.deny {
		for _, v := range variants {
			if method == "" && s.deny[i].matchesPath(v, true) || method != "" && s.deny[i].matches(method, v, true) {
				return true
			}
		}
	}
	return false
}

// withoutExtension drops everything from the first "." of the last
// segment, unless the segment starts with it.
func withoutExtension(p string) string {
	last := strings.LastIndexByte(p, '/')
	if dot := strings.IndexByte(p[last+1:], '.'); dot > 0 {
		return p[:last+1+dot]
	}
	return p
}

func (r *rule) matches(method, p string, fold bool) bool {
	if r.methods != nil {
		found := false
		for _, m := range r.methods {
			if m == method || fold && strings.EqualFold(m, method) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return r.matchesPath(p, fold)
}

// matchesPath matches the paths of a rule; fold is set for deny rules.
func (r *rule) matchesPath(p string, fold bool) bool {
	for i := range r.paths {
		if r.paths[i].match(p, fold) {
			return true
		}
	}
	return false
}

// pattern is a compiled path pattern: segments with "*" wildcards, and
// whether any remainder may follow them.
type pattern struct {
	segments  []string
	lower     []string // segments in lower case, for deny matching
	remainder bool
	// below is set for "/x/*" and "/x/**": in a deny, they cover "/x"
	// itself too, since "/x/" reads as "/x" to many upstreams.
	below bool
}

func compilePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, errors.New("must start with /")
	}
	if strings.Count(p, "*") > MaxWildcards {
		return pattern{}, fmt.Errorf("at most %d wildcards", MaxWildcards)
	}
	var pat pattern
	switch {
	case strings.HasSuffix(p, "**"):
		// "/api/**" and "/api**": the last segment's wildcard, then anything.
		p, pat.remainder = p[:len(p)-1], true
		pat.below = strings.HasSuffix(p, "/*") && len(p) > 2
	case strings.HasSuffix(p, "/*"):
		pat.remainder = true
		pat.below = len(p) > 2
	}
	if strings.Contains(p, "**") {
		return pattern{}, errors.New(`"**" is only allowed at the end`)
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") && !pat.remainder {
		return pattern{}, errors.New("must not end with / (paths are matched cleaned); use /prefix/* for everything below /prefix")
	}
	pat.segments = strings.Split(p[1:], "/")
	for i, seg := range pat.segments {
		if seg == "" && i < len(pat.segments)-1 {
			return pattern{}, errors.New("empty segment (//)")
		}
		if seg == "." || seg == ".." {
			return pattern{}, errors.New(`"." and ".." segments never match a cleaned path`)
		}
		pat.lower = append(pat.lower, reading.Fold(seg))
	}
	return pat, nil
}

// match reports whether the cleaned path p matches; with fold, p must
// already be lower case.
func (pat *pattern) match(p string, fold bool) bool {
	segs := pat.segments
	if fold {
		segs = pat.lower
	}
	rest := p[1:] // cleaned paths start with "/"
	for i, want := range segs {
		var seg string
		var more bool
		seg, rest, more = strings.Cut(rest, "/")
		if !globSegment(want, seg) {
			return false
		}
		if !more {
			// The path ends here: the pattern must end too, except that
			// a denied "/x/*" covers "/x".
			return i == len(segs)-1 || fold && pat.below && i == len(segs)-2
		}
	}
	// The path goes on past the pattern's segments.
	return pat.remainder
}

// globSegment matches one segment against a pattern segment in which "*"
// matches any run of characters. Segments hold no "/". Linear-time: on a
// mismatch, only the most recent "*" is extended.
func globSegment(pat, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// Readings returns the cleaned readings of a request path under which a
// policy must allow it: the path as decoded once (what the gateway routes
// on), as escaped on the wire, and fully decoded; and each of them without
// ";" segment parameters, as servlet containers read "/x;jsessionid=1/y"
// (and "/x/..;/y" as "/y"). Usually they coincide and one reading is
// returned. ok is false for paths too long to judge.
func Readings(decoded, escaped string) (readings []string, ok bool) {
	if len(decoded) > MaxRequestPath || len(escaped) > 3*MaxRequestPath {
		return nil, false
	}
	add := func(p string) {
		for _, r := range readings {
			if r == p {
				return
			}
		}
		readings = append(readings, p)
	}
	read := func(p string) {
		add(Clean(p))
		if strings.IndexByte(p, ';') >= 0 {
			add(Clean(withoutParams(p)))
		}
	}
	read(decoded)
	if escaped != "" {
		read(escaped)
	}
	// Decode until nothing changes (double encoding), a few rounds at most.
	full := decoded
	for range 3 {
		next, err := url.PathUnescape(full)
		if err != nil || next == full {
			break
		}
		full = next
	}
	read(full)
	return readings, true
}

// withoutParams drops the ";" parameters of every segment of a path.
func withoutParams(p string) string {
	var b strings.Builder
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		seg, _, _ = strings.Cut(seg, ";")
		b.WriteString(seg)
	}
	return b.String()
}

// Clean resolves "//", "." and ".." and reads "\" as "/", as many upstream
// servers do. The result starts with "/" and has no trailing slash (except
// for the root).
func Clean(p string) string {
	if strings.ContainsRune(p, '\\') {
		p = strings.ReplaceAll(p, "\\", "/")
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}
