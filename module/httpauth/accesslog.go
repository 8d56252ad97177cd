package httpauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/verify"
)

// LogRefusal names a refusal in the request's access log entry, so an
// operator reading the log sees why a request was refused and, when its
// token was valid, whose it was: error_code always, and LogIdentity's
// fields when id is set. The gateway and tokengate_admin call it for every
// refusal they answer. Nothing is added where no access log reads it.
func LogRefusal(r *http.Request, code errcode.Code, id *verify.Identity) {
	extra := accessLogFields(r)
	if extra == nil {
		return
	}
	extra.Set(zap.String("error_code", string(code)))
	if id != nil {
		logIdentity(r, extra, id)
	}
}

// LogIdentity names the holder of a valid token in the request's access
// log entry: user_id (through {http.auth.user.id}, which Caddy's access log
// reads), user_type, org_id and token_id. tokengate_admin calls it for
// every verified caller.
func LogIdentity(r *http.Request, id *verify.Identity) {
	if extra := accessLogFields(r); extra != nil {
		logIdentity(r, extra, id)
	}
}

func logIdentity(r *http.Request, extra *caddyhttp.ExtraLogFields, id *verify.Identity) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id.UserID)
	}
	extra.Set(zap.String("user_type", id.Type))
	extra.Set(zap.String("org_id", id.Org))
	extra.Set(zap.String("token_id", id.TokenID))
}

// accessLogFields returns the extra fields of the request's access log
// entry; nil when no access log will read them.
func accessLogFields(r *http.Request) *caddyhttp.ExtraLogFields {
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.Logs == nil {
		return nil
	}
	extra, _ := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields)
	return extra
}
