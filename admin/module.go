package admin

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/tokengate"
	"github.com/tokengate/tokengate/module/verify"
)

func init() {
	caddy.RegisterModule(AdminEndpoint{})
	caddy.RegisterModule(Handler{})
}

// AdminEndpoint serves the admin API under /tokengate/ on Caddy's admin
// endpoint: the machine's operator, with full access.
type AdminEndpoint struct {
	backend *backend // nil when the config has no tokengate app
}

// CaddyModule returns the Caddy module information.
func (AdminEndpoint) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.tokengate",
		New: func() caddy.Module { return new(AdminEndpoint) },
	}
}

// Provision takes the tokengate app if the config has one; it does not
// start one.
func (a *AdminEndpoint) Provision(ctx caddy.Context) error {
	app, err := ctx.AppIfConfigured("tokengate")
	if err != nil {
		return nil // not configured: the routes say so
	}
	tg, ok := app.(*tokengate.App)
	if !ok {
		return fmt.Errorf("tokengate app has unexpected type %T", app)
	}
	a.backend = &backend{app: tg, logger: ctx.Logger(a)}
	return nil
}

// backend is the API over the tokengate app's store, made once the app has
// started: Provision opens nothing (so `tokengate validate` does not), and
// Caddy may pass requests before the app's Start.
type backend struct {
	app    *tokengate.App
	logger *zap.Logger
	api    atomic.Pointer[API]
}

// get returns the API, starting the app first if need be; it waits for
// the store to open no longer than the request r lasts.
func (b *backend) get(r *http.Request) (*API, error) {
	if a := b.api.Load(); a != nil {
		return a, nil
	}
	run, err := b.app.RunningContext(r.Context())
	if err != nil {
		return nil, err
	}
	api := New(run.Store, run.Verifier, b.logger)
	api.reports, api.revoker = run.Reports, run.Revoker
	api.webhookAllowPrivate = run.WebhookAllowPrivate
	b.api.CompareAndSwap(nil, api)
	return b.api.Load(), nil
}

// unavailable answers a request the API cannot serve because the app did
// not start.
func unavailable(w http.ResponseWriter, err error) {
	writeError(w, &apiError{code: errcode.StoreUnavailable, msg: "the token store cannot be opened: " + err.Error()})
}

// Routes registers the API.
func (a *AdminEndpoint) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/tokengate/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

func (a *AdminEndpoint) serve(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path == "/tokengate/openapi.json" {
		serveOpenAPI(w, r, "/tokengate")
		return nil
	}
	if r.URL.Path == "/tokengate"+healthPath {
		serveHealth(w, r, a.backend, true)
		return nil
	}
	if r.URL.Path == "/tokengate"+statusPath {
		a.serveStatus(w, r)
		return nil
	}
	if r.URL.Path == "/tokengate"+snapshotPath {
		a.serveSnapshot(w, r)
		return nil
	}
	if r.URL.Path == "/tokengate"+upgradePath {
		a.serveUpgrade(w, r)
		return nil
	}
	if a.backend == nil {
		writeError(w, &apiError{code: errcode.StoreUnavailable,
			msg: "tokengate is not configured here: add the tokengate global option or a tokengate handler"})
		return nil
	}
	api, err := a.backend.get(r)
	if err != nil {
		unavailable(w, err)
		return nil
	}
	api.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/tokengate"), Caller{Operator: true})
	return nil
}

// Handler serves the admin API on a site, for callers holding a bearer
// token of an admin. Mount it where the route's prefix is stripped:
//
//	handle_path /admin/* {
//		tokengate_admin
//	}
type Handler struct {
	backend *backend
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate_admin",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the tokengate app, started with defaults if the config
// has none.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("tokengate")
	if err != nil {
		return fmt.Errorf("getting the tokengate app: %v", err)
	}
	tg, ok := app.(*tokengate.App)
	if !ok {
		return fmt.Errorf("tokengate app has unexpected type %T", app)
	}
	h.backend = &backend{app: tg, logger: ctx.Logger()}
	return nil
}

// ServeHTTP authenticates the caller and serves the API. It answers every
// request itself.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.URL.Path == "/openapi.json" {
		serveOpenAPI(w, r, sitePrefix(r))
		return nil
	}
	if r.URL.Path == healthPath {
		serveHealth(w, r, h.backend, false)
		return nil
	}
	if h.serveConsole(w, r) {
		return nil
	}
	api, err := h.backend.get(r)
	if err != nil {
		unavailable(w, err)
		return nil
	}
	if api.public(r.URL.Path) {
		// Anyone may report a leaked credential: a token sent along is
		// ignored, neither required nor verified nor logged.
		api.Serve(w, r, r.URL.Path, Caller{})
		return nil
	}
	caller, err := h.authenticate(api, r, r.URL.Path)
	if err != nil {
		ae, _ := asAPIError(err)
		refuseCaller(w, r, ae)
		return nil
	}
	api.Serve(w, r, r.URL.Path, caller)
	return nil
}

// authenticate verifies the bearer token of the request, through the same
// verification as the gateway, checks the client address against the
// user's allowed_cidrs (403 ip_forbidden), and requires an admin, except
// from a UI user on a self-service route (apiPath, the path under the API).
func (h *Handler) authenticate(api *API, r *http.Request, apiPath string) (Caller, error) {
	tok, found := httpauth.BearerToken(r.Header)
	switch found {
	case httpauth.NoToken:
		return Caller{}, &apiError{code: errcode.Unauthorized, msg: "an admin's bearer token is required", noCredential: true}
	case httpauth.BadHeader:
		return Caller{}, &apiError{code: errcode.Unauthorized, msg: "the Authorization header is not a single bearer token"}
	}
	id, err := api.verifier.Verify(r.Context(), tok)
	if err != nil {
		code, msg := httpauth.VerificationRefusal(err)
		if code.Status() == http.StatusUnauthorized {
			// The admin API's one 401 code (the gateway's tell expired
			// from invalid); the message still says which.
			code = errcode.Unauthorized
		}
		return Caller{}, &apiError{code: code, msg: msg}
	}
	logCaller(r, id)
	// The user's networks, as the gateway judges them, before its role.
	if msg := httpauth.ClientIPRefusal(r, id); msg != "" {
		return Caller{}, &apiError{code: errcode.IPForbidden, msg: msg}
	}
	if id.Role != store.RoleAdmin && !(id.Type == store.TypeUI && api.selfService(r.Method, apiPath)) {
		return Caller{}, forbidden("only admins may use the admin API")
	}
	return Caller{Identity: id}, nil
}

// logCaller names the caller of a verified token in the request's access
// log entry, as the gateway does for its refusals (user_id, user_type,
// org_id, token_id). It runs before authorization, so a valid token
// refused for lack of a role is attributed too.
func logCaller(r *http.Request, id *verify.Identity) { httpauth.LogIdentity(r, id) }

// UnmarshalCaddyfile reads the tokengate_admin directive, which takes no
// options. Syntax:
//
//	tokengate_admin
//
// Mount it under a path whose prefix is stripped, e.g. inside
// handle_path /admin/*.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("tokengate_admin takes no options, got %q", d.Val())
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*AdminEndpoint)(nil)
	_ caddy.AdminRouter           = (*AdminEndpoint)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
