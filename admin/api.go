package admin

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/report"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
)

// API is the admin JSON API. It is one http.Handler-like value served by
// both mounts; the mount says who the caller is.
type API struct {
	store    *store.Store
	verifier *verify.Verifier
	logger   *zap.Logger
	routes   []route
	// reports and revoker take reports of leaked credentials; the app
	// owns them, shared by both mounts.
	reports *report.Limiter
	revoker *report.Revoker
	// webhookAllowPrivate lets webhook URLs lead to restricted addresses
	// (the app's webhook_allow_private).
	webhookAllowPrivate bool
}

// New returns the API over a store and the verifier of the same instance.
func New(s *store.Store, v *verify.Verifier, logger *zap.Logger) *API {
	a := &API{store: s, verifier: v, logger: logger}
	a.routes = []route{
		newRoute("POST", "/orgs", createOrg),
		newRoute("GET", "/orgs", listOrgs),
		newRoute("GET", "/orgs/{org}", getOrg),
		newRoute("PATCH", "/orgs/{org}", patchOrg),
		newRoute("POST", "/orgs/{org}/accounts", createAccount),
		newRoute("GET", "/orgs/{org}/accounts", listAccounts),
		newRoute("GET", "/orgs/{org}/accounts/{act}", getAccount),
		newRoute("DELETE", "/orgs/{org}/accounts/{act}", deleteAccount),
		newRoute("POST", "/orgs/{org}/policies", createPolicy),
		newRoute("GET", "/orgs/{org}/policies", listPolicies),
		newRoute("GET", "/orgs/{org}/policies/{pol}", getPolicy),
		newRoute("PUT", "/orgs/{org}/policies/{pol}", replacePolicy),
		newRoute("DELETE", "/orgs/{org}/policies/{pol}", deletePolicy),
		newRoute("POST", "/orgs/{org}/users", createUser),
		newRoute("GET", "/orgs/{org}/users", listUsers),
		newRoute("GET", "/orgs/{org}/users/{user}", getUser),
		newRoute("PATCH", "/orgs/{org}/users/{user}", patchUser),
		newRoute("DELETE", "/orgs/{org}/users/{user}", deleteUser),
		newRoute("GET", "/orgs/{org}/users/{user}/usage", getUserUsage),
		newRoute("GET", "/orgs/{org}/users/{user}/advice", getUserAdvice),
		newRoute("GET", "/orgs/{org}/usage", getOrgUsage),
		newRoute("POST", "/orgs/{org}/users/{user}/tokens", createToken).selfService(),
		newRoute("GET", "/orgs/{org}/users/{user}/tokens", listTokens).selfService(),
		newRoute("DELETE", "/orgs/{org}/users/{user}/tokens/{tok}", revokeToken).selfService(),
		newRoute("GET", "/orgs/{org}/audit", listEvents),
		newRoute("POST", "/orgs/{org}/webhooks", createWebhook),
		newRoute("GET", "/orgs/{org}/webhooks", listWebhooks),
		newRoute("GET", "/orgs/{org}/webhooks/{wh}", getWebhook),
		newRoute("PATCH", "/orgs/{org}/webhooks/{wh}", patchWebhook),
		newRoute("DELETE", "/orgs/{org}/webhooks/{wh}", deleteWebhook),
		newRoute("GET", "/orgs/{org}/webhooks/{wh}/deliveries", listDeliveries),
		newRoute("POST", "/orgs/{org}/webhooks/{wh}/rotate-secret", rotateWebhookSecret),
		newRoute("POST", "/credentials/revoke", reportCredentials).public(),
	}
	return a
}

// Routes lists the routes the API serves.
func (a *API) Routes() []Route {
	out := make([]Route, len(a.routes))
	for i, rt := range a.routes {
		out[i] = Route{Method: rt.method, Pattern: rt.pattern}
	}
	return out
}

// selfService reports whether a request is for a route that a UI user who
// is no admin may call (for its own data only; the route's handler checks
// whose data it is).
func (a *API) selfService(method, path string) bool {
	rt, _, _ := match(a.routes, method, path)
	return rt != nil && rt.self
}

// public reports whether path is that of a route anyone may call, with
// any method (another method is answered 405, without a token too): there
// is no caller to authenticate.
func (a *API) public(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range a.routes {
		if _, ok := a.routes[i].bind(segs); ok && a.routes[i].open {
			return true
		}
	}
	return false
}

// Caller is who makes a request: the operator (Caddy's admin endpoint) or
// the holder of a verified token; the zero Caller on a public route of
// tokengate_admin, which serves anyone.
type Caller struct {
	Operator bool
	Identity *verify.Identity
}

// Actor is how the caller appears in the audit trail.
func (c Caller) Actor() store.Actor {
	if c.Operator {
		return store.Actor{ID: "operator", Type: store.ActorOperator}
	}
	return store.Actor{ID: c.Identity.UserID, Type: c.Identity.Type}
}

// call is one request being served.
type call struct {
	api    *API
	w      http.ResponseWriter
	r      *http.Request
	caller Caller
	params map[string]string
}

// Serve answers a request for path (the part after the mount's prefix).
func (a *API) Serve(w http.ResponseWriter, r *http.Request, path string, caller Caller) {
	rt, params, allowed := match(a.routes, r.Method, path)
	if rt == nil {
		if len(allowed) > 0 {
			httpauth.LogRefusal(r, errcode.MethodNotAllowed, nil)
			methodNotAllowed(w, allowed)
			return
		}
		httpauth.LogRefusal(r, errcode.NotFound, nil)
		writeError(w, notFound("no such route: "+r.Method+" "+path).(*apiError))
		return
	}
	if a.verifier.Down() {
		// The outage is logged once by the verifier; waiting for etcd
		// here would only make the caller time out.
		httpauth.LogRefusal(r, errcode.StoreUnavailable, nil)
		writeError(w, &apiError{code: errcode.StoreUnavailable, msg: "etcd is unreachable; nothing was changed, try again shortly"})
		return
	}
	c := &call{api: a, w: w, r: r, caller: caller, params: params}
	if err := rt.handle(c); err != nil {
		ae, known := asAPIError(err)
		switch {
		case !known:
			a.logger.Error("admin request failed", zap.String("method", r.Method), zap.String("route", rt.pattern), zap.Error(err))
		case ae.code == errcode.StoreUnavailable:
			a.logger.Warn("admin request failed: store unavailable", zap.String("method", r.Method), zap.String("route", rt.pattern), zap.Error(err))
		}
		httpauth.LogRefusal(r, ae.code, nil)
		writeError(w, ae)
	}
}

// changed finishes a successful change: it waits (briefly) until this
// instance's cache reflects it, so that a token revoked here is refused here
// by the time the caller hears back, then logs the action and answers.
func (c *call) changed(status int, action, target string, body any) error {
	ctx, cancel := context.WithTimeout(c.r.Context(), 2*time.Second)
	defer cancel()
	if err := c.api.verifier.WaitForRevision(ctx, c.api.store.LastCommit()); err != nil {
		c.api.logger.Warn("change not yet seen by this instance's cache", zap.String("action", action), zap.Error(err))
	}
	metrics.AdminAction(action)
	actor := c.caller.Actor()
	c.api.logger.Info("admin change", zap.String("action", action), zap.String("target", target),
		zap.String("actor_id", actor.ID), zap.String("actor_type", actor.Type))
	if body == nil {
		c.w.WriteHeader(status)
		return nil
	}
	writeJSON(c.w, status, body)
	return nil
}

// Cursors are opaque to clients.
func encodeCursor(raw string) string {
	if raw == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", invalid("cursor", "is not a cursor this API returned")
	}
	return string(raw), nil
}
