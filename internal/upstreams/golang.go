package upstreams

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxBody is the largest body the upstreams read.
const maxBody = 2 << 20

// methodOverrideHeaders are the headers generic apps take a method override
// from.
var methodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// goEcho is the go upstream: a generic net/http app. It reads the query
// with r.URL.Query (which, since Go 1.17, drops every pair holding a ";"),
// the body with r.ParseMultipartForm (urlencoded for POST, PUT and PATCH,
// and multipart) or encoding/json, and takes method overrides from the
// three usual headers and _method in the query and the body, on any
// method.
func goEcho(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	defer io.Copy(io.Discard, r.Body) // read to the end even when not parsed

	query := r.URL.Query()
	var form map[string][]string
	var jsonBody any
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if isJSON(mediaType) {
		decoder := json.NewDecoder(r.Body)
		decoder.UseNumber() // numbers as written
		if err := decoder.Decode(&jsonBody); err != nil {
			jsonBody = nil
		}
	} else {
		// On an error the app reads what was parsed: nothing from a
		// broken multipart body.
		_ = r.ParseMultipartForm(maxBody)
		if r.MultipartForm != nil {
			defer r.MultipartForm.RemoveAll()
		}
		form = r.PostForm
	}

	methods := []string{r.Method}
	for _, name := range methodOverrideHeaders {
		methods = append(methods, upperAll(r.Header.Values(name))...)
	}
	methods = append(methods, upperAll(query["_method"])...)
	methods = append(methods, upperAll(form["_method"])...)
	if object, ok := jsonBody.(map[string]any); ok {
		if override, ok := object["_method"].(string); ok {
			methods = append(methods, strings.ToUpper(override))
		}
	}

	header := r.Header.Clone()
	header["Host"] = []string{r.Host} // net/http moves it out of Header

	reading := Reading{
		Parser:         "go",
		Method:         r.Method,
		Methods:        unique(methods),
		QueryAccounts:  unique(accountValues(query)),
		HeaderAccounts: unique(r.Header.Values("X-Account-Id")),
		CookieAccounts: unique(goCookieAccounts(r)),
		BodyAccounts:   unique(append(accountValues(form), jsonAccountValues(jsonBody)...)),
		Paths:          unique(goPaths(r)),
		Header:         header,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(reading)
}

// isJSON reports whether a media type is JSON: application/json or
// application/*+json.
func isJSON(mediaType string) bool {
	return mediaType == "application/json" ||
		strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json")
}

func upperAll(values []string) []string {
	upper := make([]string, len(values))
	for i, v := range values {
		upper[i] = strings.ToUpper(v)
	}
	return upper
}

// goPaths are the path as a Go app reads it (r.URL.Path, decoded, and
// r.URL.EscapedPath), the request target up to "?", and a servlet
// container's reading (escapedPath's segments without their ";parameters",
// decoded).
func goPaths(r *http.Request) []string {
	escaped := r.URL.EscapedPath()
	paths := []string{r.URL.Path, escaped}
	if strings.HasPrefix(r.RequestURI, "/") {
		paths = append(paths, strings.SplitN(r.RequestURI, "?", 2)[0])
	}
	return append(paths, servletPath(escaped))
}

// servletPath is how a servlet container maps an escaped path: each
// segment's path parameters (";x=1") removed, then percent-decoded; kept
// undecoded when an escape is invalid.
func servletPath(escaped string) string {
	segments := strings.Split(escaped, "/")
	for i, segment := range segments {
		segments[i], _, _ = strings.Cut(segment, ";")
	}
	stripped := strings.Join(segments, "/")
	if decoded, err := url.PathUnescape(stripped); err == nil {
		return decoded
	}
	return stripped
}

// goCookieAccounts are the values net/http parses for every cookie whose
// name a case-insensitive binder reads as accountId (r.Cookie takes the
// first of an exact name).
func goCookieAccounts(r *http.Request) []string {
	var out []string
	for _, c := range r.Cookies() {
		if isAccountKey(c.Name) {
			out = append(out, c.Value)
		}
	}
	return out
}
