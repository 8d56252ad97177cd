package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
)

// The admin web console: static pages under console/ of the
// tokengate_admin mount, and the same API under console/api/ for them.
//
// The console is a UI route. Its pages load without a token (they hold
// nothing secret); the token an admin signs in with stays in the browser's
// sessionStorage and travels only in the Authorization header of the
// console's API calls. Programmatic users never use the UI: any request
// under console/ carrying a programmatic token is refused with 403
// programmatic_ui_forbidden, as the gateway's ui mode does.

//go:embed console/index.html console/app.js console/app.css console/api-docs.html console/api-docs.js console/dom.js
var consoleFS embed.FS

// consoleAsset is one embedded file, ready to serve.
type consoleAsset struct {
	body        []byte
	contentType string
	etag        string
}

// consoleAssets maps a path under console/ to its file; "" is the index.
var consoleAssets = loadConsoleAssets()

func loadConsoleAssets() map[string]consoleAsset {
	types := map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"app.css":    "text/css; charset=utf-8",
		// The API reference: the OpenAPI document read in the browser.
		"api-docs.html": "text/html; charset=utf-8",
		"api-docs.js":   "text/javascript; charset=utf-8",
		"dom.js":        "text/javascript; charset=utf-8",
	}
	assets := make(map[string]consoleAsset, len(types)+1)
	for name, contentType := range types {
		body, err := consoleFS.ReadFile("console/" + name)
		if err != nil {
			panic("admin console: embedded " + name + " missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		assets[name] = consoleAsset{body: body, contentType: contentType,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	}
	assets[""] = assets["index.html"]
	return assets
}

// consoleCSP allows the console's own files and nothing else: no inline
// script or style, no framing, no plugins, and (since the console builds
// its pages with DOM calls only) no string-to-HTML sinks either.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'"

// serveConsole answers requests for console and console/… of the mount and
// reports whether it did.
func (h *Handler) serveConsole(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/console" {
		// The mount's prefix was stripped, so only a relative Location
		// brings the browser back under it.
		w.Header().Set("Location", "console/")
		w.WriteHeader(http.StatusMovedPermanently)
		return true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/console/")
	if !ok {
		return false
	}
	setPageHeaders(w.Header())
	if id := h.programmaticCaller(r); id != nil {
		// Where the token may be used from comes first, as on the
		// gateway: outside its networks it learns nothing more.
		if msg := httpauth.ClientIPRefusal(r, id); msg != "" {
			refuseCaller(w, r, &apiError{code: errcode.IPForbidden, msg: msg})
			return true
		}
		refuseCaller(w, r, &apiError{code: errcode.ProgrammaticUIForbidden,
			msg: "programmatic users have no access to the UI; sign in with the personal access token of a UI user"})
		return true
	}
	if apiPath, ok := strings.CutPrefix(rest, "api/"); ok {
		h.serveConsoleAPI(w, r, "/"+apiPath)
		return true
	}
	serveConsoleAsset(w, r, rest)
	return true
}

// setPageHeaders sets the headers of every page the console and the API
// reference serve: their own files only, never framed.
func setPageHeaders(hdr http.Header) {
	hdr.Set("Content-Security-Policy", consoleCSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// programmaticCaller returns the identity of the request's bearer token
// when it is a programmatic user's. Tokens that do not verify are left to
// the API's own authentication (the pages need no token at all).
// Verification is cached, so checking again in authenticate costs little.
func (h *Handler) programmaticCaller(r *http.Request) *verify.Identity {
	tok, found := httpauth.BearerToken(r.Header)
	if found != httpauth.OneToken {
		return nil
	}
	api, err := h.backend.get(r)
	if err != nil {
		return nil
	}
	id, err := api.verifier.Verify(r.Context(), tok)
	if err != nil {
		return nil
	}
	logCaller(r, id)
	if id.Type != store.TypeProgrammatic {
		return nil
	}
	return id
}

// serveConsoleAPI serves the API under console/api/ to an admin, as the
// mount does, plus console/api/whoami.
func (h *Handler) serveConsoleAPI(w http.ResponseWriter, r *http.Request, apiPath string) {
	api, err := h.backend.get(r)
	if err != nil {
		unavailable(w, err)
		return
	}
	caller, err := h.authenticate(api, r, apiPath)
	if err != nil {
		ae, _ := asAPIError(err)
		refuseCaller(w, r, ae)
		return
	}
	if apiPath == "/whoami" {
		serveWhoami(w, r, caller)
		return
	}
	api.Serve(w, r, apiPath, caller)
}

// refuseCaller writes an authentication or authorization error with its
// RFC 6750 challenge.
func refuseCaller(w http.ResponseWriter, r *http.Request, ae *apiError) {
	httpauth.LogRefusal(r, ae.code, nil)
	httpauth.Challenge(w.Header(), ae.code, ae.noCredential)
	writeError(w, ae)
}

// whoamiView is who signed in to the console. whoami belongs to the
// console only: it is not in the API's route table nor in openapi.json, and
// is served nowhere but under console/api/.
type whoamiView struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Org      string   `json:"org"`
	Level    string   `json:"level"`
	Account  string   `json:"account,omitempty"`
	Accounts []string `json:"accounts"`
	Role     string   `json:"role"`
	TokenID  string   `json:"token_id"`
}

// serveWhoami answers GET console/api/whoami: the caller, as the console
// needs it to sign in and to choose what to show.
func serveWhoami(w http.ResponseWriter, r *http.Request, caller Caller) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, []string{"GET"})
		return
	}
	if _, err := query(r.URL); err != nil {
		ae, _ := asAPIError(err)
		writeError(w, ae)
		return
	}
	id := caller.Identity
	v := whoamiView{ID: id.UserID, Name: id.UserName, Type: id.Type, Org: id.Org, Level: id.Level,
		Account: id.Account, Accounts: append([]string{}, id.Accounts...), Role: id.Role, TokenID: id.TokenID}
	writeJSON(w, http.StatusOK, v)
}

// serveConsoleAsset answers GET and HEAD for the console's files. They are
// revalidated on every load (by ETag), so a new build is seen at once.
func serveConsoleAsset(w http.ResponseWriter, r *http.Request, name string) {
	asset, ok := consoleAssets[name]
	if !ok {
		writeError(w, notFound("no such page in the console: "+name).(*apiError))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, []string{"GET", "HEAD"})
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", asset.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", asset.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(asset.body))
}
