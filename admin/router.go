package admin

import (
	"net/http"
	"sort"
	"strings"

	"github.com/tokengate/tokengate/module/errcode"
)

// route is one method and path pattern of the API. Pattern segments in
// braces capture a path segment by name.
type route struct {
	method  string
	pattern string
	segs    []string
	handle  func(c *call) error
	// self marks a self-service route: open to UI users who are no
	// admins, for their own data.
	self bool
	// open marks a public route: tokengate_admin serves it to anyone,
	// without looking at a token.
	open bool
}

// Route describes a route, for documentation and tests.
type Route struct {
	Method, Pattern string
}

func newRoute(method, pattern string, handle func(c *call) error) route {
	return route{method: method, pattern: pattern, segs: strings.Split(strings.Trim(pattern, "/"), "/"), handle: handle}
}

// selfService marks the route as open to UI users who are no admins; its
// handler must then check that the data is the caller's own.
func (rt route) selfService() route {
	rt.self = true
	return rt
}

// public marks the route as open to anyone, token or not: its handler
// must need no caller.
func (rt route) public() route {
	rt.open = true
	return rt
}

// match finds the route for a request. When the path matches but the
// method does not, it returns the methods that would match.
func match(routes []route, method, path string) (*route, map[string]string, []string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if path == "" || path[0] != '/' || strings.Contains(path, "//") {
		return nil, nil, nil
	}
	var allowed []string
	for i := range routes {
		rt := &routes[i]
		params, ok := rt.bind(segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return rt, params, nil
		}
		allowed = append(allowed, rt.method)
	}
	sort.Strings(allowed)
	return nil, nil, allowed
}

func (rt *route) bind(segs []string) (map[string]string, bool) {
	if len(segs) != len(rt.segs) {
		return nil, false
	}
	var params map[string]string
	for i, want := range rt.segs {
		if strings.HasPrefix(want, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string, 3)
			}
			params[want[1:len(want)-1]] = segs[i]
			continue
		}
		if segs[i] != want {
			return nil, false
		}
	}
	return params, true
}

// methodNotAllowed answers a known path with an unknown method.
func methodNotAllowed(w http.ResponseWriter, allowed []string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, &apiError{code: errcode.MethodNotAllowed,
		msg: "method not allowed here; allowed: " + strings.Join(allowed, ", ")})
}
