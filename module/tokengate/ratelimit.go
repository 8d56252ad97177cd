package tokengate

import (
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/ratelimit"
	"github.com/tokengate/tokengate/module/verify"
)

// limiterSource gives the rate limiter to use for a request: the app's.
type limiterSource interface {
	Limiter() *ratelimit.Limiter
}

// rateLimitPolicy names the one policy the RateLimit fields describe: the
// user's own budget.
const rateLimitPolicy = `"user"`

// overLimit counts a request of a user with a rate_limit. It sets the
// RateLimit-Policy and RateLimit fields (IETF httpapi rate-limit-headers
// draft) on the response and the {http.auth.ratelimit.*} placeholders,
// and reports whether the request is over the user's budget: then the
// caller answers 429 with the Retry-After this sets. Users without a
// rate_limit cost nothing here.
func (h *Handler) overLimit(w http.ResponseWriter, r *http.Request, id *verify.Identity) bool {
	if id.Limit == nil {
		return false
	}
	ls, _ := h.verifiers.(limiterSource)
	if ls == nil {
		return false
	}
	lim := ls.Limiter()
	if lim == nil {
		return false
	}
	d := lim.Allow(id.UserID, id.Limit.Requests, id.Limit.Window)
	reset := ceilSeconds(d.Reset)
	hdr := w.Header()
	hdr.Set("RateLimit-Policy", rateLimitPolicy+";q="+strconv.FormatInt(d.Requests, 10)+";w="+strconv.FormatInt(ceilSeconds(d.Window), 10))
	hdr.Set("RateLimit", rateLimitPolicy+";r="+strconv.FormatInt(d.Remaining, 10)+";t="+strconv.FormatInt(reset, 10))
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.ratelimit.limit", d.Requests)
		repl.Set("http.auth.ratelimit.window", ceilSeconds(d.Window))
		repl.Set("http.auth.ratelimit.remaining", d.Remaining)
		repl.Set("http.auth.ratelimit.reset", reset)
	}
	if d.Allowed {
		return false
	}
	hdr.Set("Retry-After", strconv.FormatInt(max(reset, 1), 10))
	return true
}

// refuseOverLimit answers a request over its user's budget.
func (h *Handler) refuseOverLimit(w http.ResponseWriter, r *http.Request, id *verify.Identity) error {
	return h.refuse(w, r, id, errcode.RateLimited, "the user's rate limit is used up for this window; see Retry-After")
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
