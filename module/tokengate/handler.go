package tokengate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/usage"
	"github.com/tokengate/tokengate/module/verify"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Modes of the handler.
const (
	ModeAPI = "api"
	ModeUI  = "ui"
)

// Scopes of an api route.
const (
	ScopeAccount      = "account"
	ScopeOrganization = "organization"
)

// Handler admits requests by bearer token. In api mode a valid token is
// required and must allow the request; in ui mode requests without a token
// pass untagged, tokens of UI users pass tagged, and programmatic tokens are
// refused. In both modes every incoming header carrying the identity prefix
// is removed first, so a client can never impersonate anyone.
type Handler struct {
	// "api" (a token is required) or "ui". Required.
	Mode string `json:"mode,omitempty"`

	// api mode: "account" (default), the request acts on one account's
	// resources; or "organization", an org-wide route only
	// organization-level users may reach.
	Scope string `json:"scope,omitempty"`

	// api mode, account scope: a placeholder giving the target account.
	// Default: the accountId query parameter, else the X-Account-Id header.
	// Those two are judged whatever this names, since an upstream may
	// still read them: every source that names an account must name the
	// same one, or the request is refused.
	Account string `json:"account,omitempty"`

	// api mode: user types admitted, "programmatic" and/or "ui". Default:
	// both.
	Types []string `json:"types,omitempty"`

	// Keep the Authorization header on the request sent upstream. Default:
	// it is removed.
	ForwardCredentials bool `json:"forward_credentials,omitempty"`

	// The identity headers sent upstream, named by what follows the header
	// prefix, in any letter case: "user-id", "user-type", "user-name",
	// "org-id", "account-id", "role", "token-id"; or "all" alone. user-id
	// and user-type must be among them. Headers left out are not sent
	// (fewer headers, a cheaper proxy and upstream), yet every incoming
	// header with the prefix is still removed and every {http.auth.*}
	// placeholder is still set. account-id is sent only when the request
	// has a target account (never in ui mode). Default: all seven.
	IdentityHeaders []string `json:"identity_headers,omitempty"`

	verifiers  verifierSource
	limits     limiterSource // the rate limiter's source; nil: none
	prefix     string
	account    accountSource
	headers    identityHeaders
	omits      identityHeaderSet // identity headers not sent; zero: none
	admitsType [2]bool           // [programmatic, ui]
	logger     *zap.Logger
}

// identityHeaders are the canonical names of the headers sent upstream;
// "" for a header the configuration leaves out.
type identityHeaders struct {
	userID, userType, userName, org, account, role, tokenID string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the configuration and takes the verifier of the
// tokengate app (started with defaults if the config has none).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.settle(); err != nil {
		return err
	}
	appIface, err := ctx.App("tokengate")
	if err != nil {
		return fmt.Errorf("getting the tokengate app: %v", err)
	}
	app, ok := appIface.(*App)
	if !ok {
		return fmt.Errorf("tokengate app has unexpected type %T", appIface)
	}
	h.use(app, app.HeaderPrefix)
	if named := h.account.headers[h.account.nHdrs-1]; h.account.kind == accountHeader &&
		strings.HasPrefix(strings.ToLower(named), strings.ToLower(app.HeaderPrefix)) {
		return fmt.Errorf("account %q: headers starting with %s are removed before the account is judged", h.Account, app.HeaderPrefix)
	}
	return nil
}

// verifierSource gives the verifier to use for a request: the app's, once
// it has started (Provision opens nothing).
type verifierSource interface {
	VerifierContext(ctx context.Context) *verify.Verifier
}

// fixedVerifier is a verifierSource of one verifier, for tests.
type fixedVerifier struct{ v *verify.Verifier }

func (f fixedVerifier) VerifierContext(context.Context) *verify.Verifier { return f.v }

// use sets what the handler works with: where its verifier comes from and
// the identity header prefix.
func (h *Handler) use(vs verifierSource, headerPrefix string) {
	h.verifiers = vs
	h.limits, _ = vs.(limiterSource)
	h.prefix = textproto.CanonicalMIMEHeaderKey(headerPrefix)
	h.account = parseAccountSource(h.Account)
	name := func(hdr IdentityHeader) string {
		if h.omits.has(hdr) {
			return ""
		}
		return textproto.CanonicalMIMEHeaderKey(headerPrefix + string(hdr))
	}
	h.headers = identityHeaders{
		userID:   name(HeaderUserID),
		userType: name(HeaderUserType),
		userName: name(HeaderUserName),
		org:      name(HeaderOrgID),
		account:  name(HeaderAccountID),
		role:     name(HeaderRole),
		tokenID:  name(HeaderTokenID),
	}
}

// Validate checks the configuration without changing it; each rule is
// checked here only, for the JSON config and for each line of the Caddyfile.
func (h *Handler) Validate() error {
	switch h.Mode {
	case ModeAPI:
	case ModeUI:
		if h.Scope != "" || h.Account != "" || len(h.Types) > 0 {
			return errors.New("scope, account and types are for api mode (ui routes take only forward_credentials and identity_headers)")
		}
	case "":
		return errors.New(`mode is required: "api" or "ui"`)
	default:
		return fmt.Errorf(`mode %q: want "api" or "ui"`, h.Mode)
	}
	if err := checkAccountSource(h.Account); err != nil {
		return err
	}
	switch h.Scope {
	case "", ScopeAccount:
	case ScopeOrganization:
		if h.Account != "" {
			return errors.New("account is for account-scoped routes, not scope organization")
		}
	default:
		return fmt.Errorf(`scope %q: want "account" or "organization"`, h.Scope)
	}
	if h.Types != nil && len(h.Types) == 0 {
		return errors.New(`types: name "programmatic", "ui" or both, or leave it out for both`)
	}
	for i, t := range h.Types {
		if t != store.TypeProgrammatic && t != store.TypeUI {
			return fmt.Errorf(`types: %q is not "programmatic" or "ui"`, t)
		}
		if slices.Contains(h.Types[:i], t) {
			return fmt.Errorf("types: %q named more than once", t)
		}
	}
	if h.IdentityHeaders != nil {
		if _, err := parseIdentityHeaders(h.IdentityHeaders); err != nil {
			return fmt.Errorf("identity_headers: %v", err)
		}
	}
	return nil
}

// fillDefaults sets what a checked configuration leaves to defaults.
func (h *Handler) fillDefaults() {
	if h.Mode == ModeAPI && h.Scope == "" {
		h.Scope = ScopeAccount
	}
	h.admitsType = [2]bool{len(h.Types) == 0, len(h.Types) == 0}
	for _, t := range h.Types {
		h.admitsType[0] = h.admitsType[0] || t == store.TypeProgrammatic
		h.admitsType[1] = h.admitsType[1] || t == store.TypeUI
	}
	h.omits = 0
	if h.IdentityHeaders != nil {
		h.omits, _ = parseIdentityHeaders(h.IdentityHeaders) // checked by Validate
	}
}

// settle checks the configuration, then fills in its defaults.
func (h *Handler) settle() error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.fillDefaults()
	return nil
}

// ServeHTTP follows the steps of the contract, in order.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// 1. Nothing a client sends may look like an identity header, nor make
	// the proxy drop one.
	judged := h.prepare(r)
	if judged.fields > MaxHeaderFields {
		return h.refuse(w, r, nil, errcode.TooManyHeaders, fmt.Sprintf("at most %d header fields: past their own limits some upstreams drop fields, the identity headers among them", MaxHeaderFields))
	}

	// 2. The bearer token, from the Authorization header only.
	tok, found := httpauth.BearerToken(r.Header)
	if !h.ForwardCredentials {
		delete(r.Header, "Authorization")
	}

	// 3. No token.
	if found == httpauth.NoToken {
		if h.Mode == ModeUI {
			metrics.VerifiedUntagged.Inc()
			return next.ServeHTTP(w, r)
		}
		return h.refuse(w, r, nil, errcode.MissingToken, "a bearer token is required (Authorization: Bearer <token>)")
	}
	if found == httpauth.BadHeader {
		return h.refuse(w, r, nil, errcode.InvalidToken, "the Authorization header is not a single bearer token")
	}

	// 4. The identity behind the token.
	v := h.verifiers.VerifierContext(r.Context())
	if v == nil {
		return h.refuse(w, r, nil, errcode.StoreUnavailable, "the token store cannot be opened")
	}
	id, err := v.Verify(r.Context(), tok)
	if err != nil {
		return h.refuseVerification(w, r, err)
	}
	// Where the token may be used from comes first: a token used outside
	// its user's networks learns nothing of what it could reach here.
	if msg := httpauth.ClientIPRefusal(r, id); msg != "" {
		return h.refuse(w, r, id, errcode.IPForbidden, msg)
	}

	// 5. Programmatic users never reach the UI.
	if h.Mode == ModeUI {
		if id.Type == store.TypeProgrammatic {
			return h.refuse(w, r, id, errcode.ProgrammaticUIForbidden, "programmatic users have no access to the UI")
		}
		if h.overLimit(w, r, id) {
			return h.refuseOverLimit(w, r, id)
		}
		h.tag(r, id, "")
		metrics.VerifiedOK.Inc()
		h.count(r, id, "", -1, usage.Admitted)
		return next.ServeHTTP(w, r)
	}

	// 6. What the user may reach on this route.
	account, statement, ref := h.admitAPI(r, id, &judged)
	if ref.code != "" {
		return h.refuse(w, r, id, ref.code, ref.msg)
	}
	if id.Proposed != nil {
		h.tryProposed(r, id, account, &judged)
	}

	// The user's budget counts only requests that would go upstream.
	if h.overLimit(w, r, id) {
		return h.refuseOverLimit(w, r, id)
	}

	// 7. Tag the request; 8. (Authorization was removed above.)
	h.tag(r, id, account)
	metrics.VerifiedOK.Inc()
	h.count(r, id, account, statement, usage.Admitted)
	return next.ServeHTTP(w, r)
}

func (h *Handler) admits(userType string) bool {
	if userType == store.TypeProgrammatic {
		return h.admitsType[0]
	}
	return h.admitsType[1]
}

// tag sets the identity headers, placeholders and access log fields.
func (h *Handler) tag(r *http.Request, id *verify.Identity, account string) {
	// One allocation holds every value; each header gets a slice of it
	// whose capacity ends at its own value, so nothing downstream can
	// write into another header's value.
	vals := [7]string{id.UserID, id.Type, id.UserName, id.Org, id.Role, id.TokenID, account}
	hv := &vals
	// user-id and user-type are always sent; the others when chosen (an
	// empty name is one identity_headers left out).
	r.Header[h.headers.userID] = hv[0:1:1]
	r.Header[h.headers.userType] = hv[1:2:2]
	if h.headers.userName != "" {
		r.Header[h.headers.userName] = hv[2:3:3]
	}
	if h.headers.org != "" {
		r.Header[h.headers.org] = hv[3:4:4]
	}
	if h.headers.role != "" {
		r.Header[h.headers.role] = hv[4:5:5]
	}
	if h.headers.tokenID != "" {
		r.Header[h.headers.tokenID] = hv[5:6:6]
	}
	if account != "" && h.headers.account != "" {
		r.Header[h.headers.account] = hv[6:7:7]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(func(key string) (any, bool) {
			switch key {
			case "http.auth.user.id":
				return id.UserID, true
			case "http.auth.user.type":
				return id.Type, true
			case "http.auth.user.name":
				return id.UserName, true
			case "http.auth.user.org":
				return id.Org, true
			case "http.auth.user.account":
				return account, true
			case "http.auth.user.role":
				return id.Role, true
			case "http.auth.token.id":
				return id.TokenID, true
			}
			return nil, false
		})
	}
	// user_id comes from {http.auth.user.id}; user_type is ours to add,
	// only where an access log will read it: the field costs three
	// allocations per request.
	if srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); srv != nil && srv.Logs != nil {
		if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
			extra.Add(zap.String("user_type", id.Type))
		}
	}
}

// admitAPI judges what a verified user may reach on an api route: its
// type, its level, the account the request names (or its own), its role
// on every reading of the method and path. It returns the account the
// request is for ("" on an organization-wide route naming none), or why
// it is refused; and, for a user of role policy, the statement that
// allowed it (an index into id.Statements, else -1).
func (h *Handler) admitAPI(r *http.Request, id *verify.Identity, judged *judgedHeaders) (string, int, refusal) {
	if !h.admits(id.Type) {
		return "", -1, refusal{errcode.UserTypeForbidden, id.Type + " users are not admitted on this route"}
	}
	if h.Scope == ScopeOrganization && id.Level != store.LevelOrganization {
		return "", -1, refusal{errcode.LevelForbidden, "this route is organization-wide; account-level users cannot reach it"}
	}
	// The account: on an organization-wide route only when the request
	// names one (the upstream may read it), on an account route always.
	account, msg := h.targetAccount(r, judged)
	switch {
	case msg != "":
		return "", -1, refusal{errcode.AccountForbidden, msg}
	case account == "" && h.Scope == ScopeOrganization:
	case account == "" && id.Level == store.LevelAccount:
		account = id.Account
	case account == "":
		return "", -1, refusal{errcode.AccountRequired, "organization-level users must name the account in " + h.account.where}
	}
	if account != "" && !id.Reaches(account) {
		return "", -1, refusal{errcode.AccountForbidden, "the token does not reach account " + account}
	}
	ref, statement := h.judgeRole(r, id, judged)
	return account, statement, ref
}

func (h *Handler) refuseVerification(w http.ResponseWriter, r *http.Request, err error) error {
	code, msg := httpauth.VerificationRefusal(err)
	if code == errcode.StoreUnavailable {
		// The store's health is logged once per outage (the verifier's
		// monitor), not per refused request.
		if c := h.logger.Check(zapcore.DebugLevel, "token store unavailable"); c != nil {
			c.Write(zap.Error(err))
		}
	}
	return h.refuse(w, r, nil, code, msg)
}

// tryProposed judges an admitted request again by the user's proposed
// rights (report-only) and counts it, and logs it, when they would have
// refused it. The request goes on whatever they say.
func (h *Handler) tryProposed(r *http.Request, id *verify.Identity, account string, judged *judgedHeaders) {
	_, _, would := h.admitAPI(r, id.Proposed, judged)
	if would.code == "" {
		return
	}
	if c := h.logger.Check(zapcore.InfoLevel, "the proposed rights would refuse this request"); c != nil {
		c.Write(zap.String("user_id", id.UserID), zap.String("code", string(would.code)), zap.String("message", would.msg),
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
	}
	h.count(r, id, account, -1, usage.WouldRefusePrefix+string(would.code))
}

// count counts a request of a verified user for its usage: the account
// it was for, the policy statement that allowed it (an index into
// id.Statements, or -1), and its outcome; and, once a minute per token,
// notes the client address and user agent it came with.
func (h *Handler) count(r *http.Request, id *verify.Identity, account string, statement int, outcome string) {
	v := h.verifiers.VerifierContext(r.Context())
	if v == nil {
		return
	}
	label := ""
	if statement >= 0 && statement < len(id.Statements) {
		label = id.Statements[statement]
	}
	now := time.Now()
	v.CountRequest(id, now, account, r.Method, r.URL.Path, label, outcome)
	if id.ClientDue(now) {
		ip := ""
		if addr := httpauth.ClientIP(r); addr.IsValid() {
			ip = addr.String()
		}
		v.NoteClient(id, ip, usage.Printable(r.UserAgent()), now)
	}
}

// refuse counts and logs the refusal and answers it: the contract's JSON
// error, or, on a server with error routes (handle_errors), an error for
// them to answer.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, id *verify.Identity, code errcode.Code, msg string) error {
	metrics.Refused(code)
	if c := h.logger.Check(zapcore.DebugLevel, "request refused"); c != nil {
		fields := []zap.Field{zap.String("code", string(code)), zap.String("method", r.Method), zap.String("uri", r.RequestURI)}
		if id != nil {
			fields = append(fields, zap.String("user_id", id.UserID), zap.String("user_type", id.Type))
		}
		c.Write(fields...)
	}
	httpauth.LogRefusal(r, code, id)
	if id != nil {
		h.count(r, id, "", -1, string(code))
	}
	status := code.Status()
	httpauth.Challenge(w.Header(), code, code == errcode.MissingToken)
	if routesErrors(r) {
		// The server has handle_errors: the refusal goes through it, as
		// Caddy's own handlers' do, the headers above kept. The contract's
		// JSON body is at hand for it as {http.vars.tokengate_error_body}.
		caddyhttp.SetVar(r.Context(), "tokengate_error_code", string(code))
		caddyhttp.SetVar(r.Context(), "tokengate_error_body", httpauth.ErrorJSON(string(code), msg))
		return caddyhttp.Error(status, refusal{code, msg})
	}
	httpauth.WriteError(w, status, string(code), msg)
	return nil
}

// routesErrors reports whether the request's server has error routes
// (handle_errors). Without them Caddy would answer an error with an empty
// body, so tokengate writes the contract's JSON itself.
func routesErrors(r *http.Request) bool {
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
