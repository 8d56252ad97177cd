package tokengate

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/reading"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
)

// One reading: what the gateway judges is exactly what the upstream can
// read. This file computes every reading an upstream may make of the facts
// the handler judges — the account, the method, the path — and judges all
// of them; what it cannot read unambiguously it refuses. The rules of
// reading live in module/reading and module/policy.

// MaxFormBody is the most of a POST form body the handler reads to find
// method overrides in it.
const MaxFormBody = 1 << 20

// MaxHeaderFields is the most header fields a request may carry. Past
// their own limits some servers drop fields silently (Node keeps the first
// 1000, and Go's proxy sends fields sorted by name, the identity tags
// late); others (Apache, Tomcat, Gunicorn) refuse more than 100.
const MaxHeaderFields = 100

// Where the account is read from.
const (
	accountDefault = iota // the accountId query parameter and the X-Account-Id header
	accountQuery          // one query parameter, and the default sources
	accountHeader         // one header, and the default sources
	accountCookie         // one cookie, and the default sources
	accountOther          // any other placeholder, through the replacer, and the default sources
)

// accountSource is the provisioned form of the handler's account option.
//
// Whatever the option names, the default sources — accountId in the query
// and the X-Account-Id header — are judged too: an upstream written for
// the default still reads them, and an account named there that the
// gateway did not judge would reach it unchecked. Every source that names
// an account must name the same one.
type accountSource struct {
	kind    int
	params  [2]reading.Name // query parameters read, the default's first
	nParams int
	headers [2]string // canonical header names read, the default's first
	nHdrs   int
	cookie  reading.Name // the cookie read (accountCookie)
	// where names the configured source in answers ("the tenant query
	// parameter").
	where string
}

// checkAccountSource is the rule of the account option: one placeholder of
// the request that names the account, in one of the forms the handler
// judges. Anything else — Caddyfile shorthands in JSON ({path.1}), the
// environment, variables, the identity's own placeholders — would come out
// empty or the same for every request, judging nothing.
func checkAccountSource(placeholder string) error {
	if placeholder == "" {
		return nil
	}
	bad := fmt.Errorf("account %q: want one of {http.request.uri.path.N}, {query.NAME}, {header.NAME} or {cookie.NAME} "+
		"(in JSON, the Caddyfile's shorthands such as {path.1} are written in full)", placeholder)
	inner, ok := strings.CutPrefix(placeholder, "{")
	if ok {
		inner, ok = strings.CutSuffix(inner, "}")
	}
	if !ok || inner == "" || strings.ContainsAny(inner, "{}") {
		return bad
	}
	if n, found := strings.CutPrefix(inner, "http.request.uri.path."); found {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && strconv.Itoa(i) == n {
			return nil
		}
		return bad
	}
	for _, p := range []string{"query.", "http.request.uri.query.", "cookie.", "http.request.cookie.", "header.", "http.request.header."} {
		if name, found := strings.CutPrefix(inner, p); found && name != "" {
			return nil
		}
	}
	return bad
}

// parseAccountSource reads the account option: the query and header
// placeholders get every reading of their name; others are judged as the
// replacer gives them.
func parseAccountSource(placeholder string) accountSource {
	src := accountSource{
		kind:    accountDefault,
		params:  [2]reading.Name{reading.AccountParam},
		nParams: 1,
		headers: [2]string{reading.AccountHeader},
		nHdrs:   1,
		where:   "the accountId query parameter or the " + reading.AccountHeader + " header",
	}
	if placeholder == "" {
		return src
	}
	src.kind, src.where = accountOther, "the placeholder "+placeholder
	inner, ok := strings.CutPrefix(placeholder, "{")
	if ok {
		inner, ok = strings.CutSuffix(inner, "}")
	}
	if !ok || strings.ContainsAny(inner, "{}") {
		return src
	}
	for _, p := range []string{"query.", "http.request.uri.query."} {
		if name, found := strings.CutPrefix(inner, p); found && name != "" {
			src.kind, src.where = accountQuery, "the "+name+" query parameter"
			if param := reading.NewName(name); param != reading.AccountParam {
				src.params[1], src.nParams = param, 2
			}
			return src
		}
	}
	for _, p := range []string{"cookie.", "http.request.cookie."} {
		if name, found := strings.CutPrefix(inner, p); found && name != "" {
			src.kind, src.where = accountCookie, "the "+name+" cookie"
			src.cookie = reading.NewName(name)
			return src
		}
	}
	for _, p := range []string{"header.", "http.request.header."} {
		if name, found := strings.CutPrefix(inner, p); found && name != "" {
			name = http.CanonicalHeaderKey(name)
			src.kind, src.where = accountHeader, "the "+name+" header"
			if !reading.HeaderIs(name, reading.AccountHeader) {
				src.headers[1], src.nHdrs = name, 2
			}
			return src
		}
	}
	return src
}

// judgedHeaders are the headers, as received, that some upstream reads as
// a header the handler judges (the account header, the method override
// headers), whatever their spelling. Collected while identity headers are
// stripped, so the request's headers are walked once.
type judgedHeaders struct {
	keys   [8]string
	n      int
	more   bool // more keys than fit: walk the header again
	fields int  // header fields of the request, as received
}

// prepare strips identity headers, collects the judged headers, takes out
// of Connection every name the proxy would otherwise drop after judging
// (one reading, docs/security.md), and sees that no trailer brings such a name
// back after the verdict.
func (h *Handler) prepare(r *http.Request) judgedHeaders {
	var j judgedHeaders
	for key, vals := range r.Header {
		j.fields += len(vals)
		switch {
		case reading.HeaderHasPrefix(key, h.prefix):
			delete(r.Header, key)
		case h.judged(key):
			if j.n < len(j.keys) {
				j.keys[j.n] = key
				j.n++
			} else {
				j.more = true
			}
		}
	}
	if conn := r.Header["Connection"]; len(conn) > 0 {
		h.sanitizeConnection(r.Header, conn)
	}
	if r.Trailer != nil && r.Body != nil {
		// Declared trailers arrive after the verdict, and Caddy's proxy
		// passes them on: neither declare nor send such names.
		h.scrubTrailers(r.Trailer)
		r.Body = &trailerScrubber{ReadCloser: r.Body, trailer: r.Trailer, h: h}
	}
	return j
}

// mustArriveAsJudged reports whether a header name, in Connection or as a
// trailer, could change after the verdict what the upstream reads: the
// identity headers, the headers judged, and those that say how the body
// is read (without Content-Type, Rack parses a POST body as a form).
func (h *Handler) mustArriveAsJudged(name string) bool {
	return reading.HeaderHasPrefix(name, h.prefix) || h.judged(name) ||
		reading.HeaderIs(name, "Content-Type") || reading.HeaderIs(name, "Content-Encoding") ||
		reading.HeaderIs(name, "Content-Length") || reading.HeaderIs(name, "Transfer-Encoding") ||
		reading.HeaderIs(name, "Authorization") ||
		h.account.kind == accountCookie && reading.HeaderIs(name, "Cookie")
}

// trailerScrubber drops, as the body ends, the trailers that must not
// reach the upstream: net/http adds the trailers to the request when its
// body is read to the end, and Caddy's proxy sends them on from there.
type trailerScrubber struct {
	io.ReadCloser
	trailer http.Header
	h       *Handler
}

func (t *trailerScrubber) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.h.scrubTrailers(t.trailer)
	}
	return n, err
}

func (h *Handler) scrubTrailers(trailer http.Header) {
	for name := range trailer {
		if h.mustArriveAsJudged(name) {
			delete(trailer, name)
		}
	}
}

// judged reports whether a header name is read as one the handler judges.
func (h *Handler) judged(key string) bool {
	for _, name := range h.account.headers[:h.account.nHdrs] {
		if reading.HeaderIs(key, name) {
			return true
		}
	}
	for _, name := range reading.MethodOverrideHeaders {
		if reading.HeaderIs(key, name) {
			return true
		}
	}
	return false
}

// values appends the values of every judged header read as name.
func (j *judgedHeaders) values(dst []string, hdr http.Header, name string) []string {
	if j.more {
		for key, vals := range hdr {
			if reading.HeaderIs(key, name) {
				dst = append(dst, vals...)
			}
		}
		return dst
	}
	for _, key := range j.keys[:j.n] {
		if reading.HeaderIs(key, name) {
			dst = append(dst, hdr[key]...)
		}
	}
	return dst
}

// sanitizeConnection removes from Connection the names of headers that
// must reach the upstream as judged. Caddy's proxy drops every header
// Connection names, after this handler has run.
func (h *Handler) sanitizeConnection(hdr http.Header, conn []string) {
	keep := conn[:0:0]
	for _, v := range conn {
		var kept []string
		for _, tok := range strings.Split(v, ",") {
			name := strings.TrimSpace(tok)
			if name == "" || h.mustArriveAsJudged(name) {
				continue
			}
			kept = append(kept, name)
		}
		if len(kept) > 0 {
			keep = append(keep, strings.Join(kept, ", "))
		}
	}
	if len(keep) == 0 {
		delete(hdr, "Connection")
	} else {
		hdr["Connection"] = keep
	}
}

// targetAccount reads the account the request acts on: every reading of
// it, from the configured source and the default ones, must name the same
// account. msg is set when they do not.
func (h *Handler) targetAccount(r *http.Request, j *judgedHeaders) (account, msg string) {
	var buf [4]string
	vals := buf[:0]
	if h.account.kind == accountOther {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl == nil {
			return "", "no replacer for the account placeholder"
		}
		if v := repl.ReplaceAll(h.Account, ""); v != "" {
			vals = append(vals, v)
		}
	}
	if h.account.kind == accountCookie {
		// Every Cookie field, in every spelling some upstream reads as
		// Cookie: Caddy's placeholder would read only the first cookie.
		for key, fields := range r.Header {
			if reading.HeaderIs(key, "Cookie") {
				vals = reading.CookieValues(vals, fields, h.account.cookie)
			}
		}
	}
	if r.URL.RawQuery != "" {
		for _, param := range h.account.params[:h.account.nParams] {
			vals = reading.QueryValues(vals, r.URL.RawQuery, param)
		}
	}
	for _, name := range h.account.headers[:h.account.nHdrs] {
		n := len(vals)
		vals = j.values(vals, r.Header, name)
		if len(vals)-n > 1 {
			// Servers that fold repeated headers into one (PHP, Rack,
			// Node) read "A, B"; a list is never one account.
			vals = append(vals, strings.Join(vals[n:], ", "))
		}
	}
	if len(vals) == 0 {
		return "", ""
	}
	for _, v := range vals[1:] {
		if v != vals[0] {
			return "", "the request names its account more than once or in more than one spelling; upstreams may read either"
		}
	}
	return vals[0], ""
}

// refusal is why a request is refused; the zero value admits it. It is
// also the error a refused request returns to Caddy when its server routes
// errors (handle_errors): {err.message} is its message.
type refusal struct {
	code errcode.Code
	msg  string
}

func (r refusal) Error() string { return r.msg }

func forbidRole(format string, args ...any) refusal {
	return refusal{errcode.RoleForbidden, fmt.Sprintf(format, args...)}
}

// judgeRole checks that the user's role allows every method the request
// may be read as, on every reading of its path: the method received, the
// override headers, _method in the query and, for a POST whose role does
// not allow every method, _method in a form or JSON body.
//
// For a user of role policy it also names the statement that allowed the
// request's method on its path: an index into id.Statements (-1 for other
// roles and for refusals).
func (h *Handler) judgeRole(r *http.Request, id *verify.Identity, j *judgedHeaders) (refusal, int) {
	if id.Role == store.RoleEditor || id.Role == store.RoleAdmin {
		return refusal{}, -1 // every method on every path
	}
	var paths []string
	if id.Role == store.RolePolicy {
		var ok bool
		if paths, ok = policy.Readings(r.URL.Path, r.URL.EscapedPath()); !ok {
			return forbidRole("the path is too long to judge"), -1
		}
	}
	by := -1 // the statement that allowed the last method judged
	allowed := func(method string) bool {
		switch id.Role {
		case store.RoleViewer:
			return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
		case store.RolePolicy:
			var ok bool
			ok, by = id.Rules.AllowedBy(method, paths)
			return ok
		}
		return false
	}
	if !allowed(r.Method) {
		return forbidRole("role %s does not allow %s on this path", id.Role, r.Method), -1
	}
	statement := by
	judge := func(v, where string) refusal {
		asSent, upper, ok := reading.OverrideMethods(v)
		if !ok {
			return forbidRole("the method override in %s is not one method", where)
		}
		for _, m := range [2]string{upper, asSent} {
			if !allowed(m) {
				return forbidRole("role %s does not allow %s (%s) on this path", id.Role, m, where)
			}
		}
		return refusal{}
	}
	var buf [4]string
	for _, name := range reading.MethodOverrideHeaders {
		for _, v := range j.values(buf[:0], r.Header, name) {
			if ref := judge(v, name); ref.code != "" {
				return ref, -1
			}
		}
	}
	if r.URL.RawQuery != "" {
		for _, v := range reading.QueryValues(buf[:0], r.URL.RawQuery, reading.MethodParam) {
			if ref := judge(v, "the query's _method"); ref.code != "" {
				return ref, -1
			}
		}
	}
	// "post" too: Symfony upper-cases the method before it reads _method.
	if strings.EqualFold(r.Method, http.MethodPost) && id.Role == store.RolePolicy && !id.Rules.AllowsEveryMethod(paths) {
		vals, ref := readBodyMethods(r)
		if ref.code != "" {
			return ref, -1
		}
		for _, v := range vals {
			if ref := judge(v, "the body's _method"); ref.code != "" {
				return ref, -1
			}
		}
	}
	return refusal{}, statement
}

// readBodyMethods reads the _method values of a POST body that upstreams
// parse (a form, multipart or JSON body), at most MaxFormBody bytes, and
// puts the body back to be passed on byte for byte.
func readBodyMethods(r *http.Request) ([]string, refusal) {
	kinds, boundary, err := reading.BodyKinds(r.Header["Content-Type"])
	if err != nil {
		return nil, forbidRole("%v", err)
	}
	if kinds == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, refusal{}
	}
	if ce := r.Header["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return nil, forbidRole("an encoded request body cannot be judged")
	}
	tooLarge := refusal{errcode.PayloadTooLarge,
		fmt.Sprintf("a form body read for method overrides may hold at most %d bytes", MaxFormBody)}
	if r.ContentLength > MaxFormBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxFormBody+1))
	if err != nil {
		return nil, refusal{errcode.InvalidRequest, "the request body could not be read"}
	}
	if len(body) > MaxFormBody {
		return nil, tooLarge
	}
	r.Body = replayBody{Reader: bytes.NewReader(body), Closer: r.Body}
	vals, err := reading.BodyValues(nil, body, kinds, boundary, reading.MethodParam)
	if err != nil {
		return nil, forbidRole("%v", err)
	}
	return vals, refusal{}
}

// replayBody serves a body already read, and closes the original.
type replayBody struct {
	io.Reader
	io.Closer
}
