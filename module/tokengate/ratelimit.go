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
	if h.limits == nil {
		return false
	}
	lim := h.limits.Limiter()
	if lim == nil {
		return false
	}
	d := lim.Allow(id.UserID, id.Limit.Requests, id.Limit.Window)
	reset, window := ceilSeconds(d.Reset), ceilSeconds(d.Window)
	// Both values in one buffer and one backing array, the keys already
	// canonical: a request of a limited user costs few allocations.
	buf := make([]byte, 0, 2*len(rateLimitPolicy)+64)
	buf = append(buf, rateLimitPolicy+";q="...)
	buf = strconv.AppendInt(buf, d.Requests, 10)
	buf = append(buf, ";w="...)
	buf = strconv.AppendInt(buf, window, 10)
	split := len(buf)
	buf = append(buf, rateLimitPolicy+";r="...)
	buf = strconv.AppendInt(buf, d.Remaining, 10)
	buf = append(buf, ";t="...)
	buf = strconv.AppendInt(buf, reset, 10)
	all := string(buf)
	vals := &[2]string{all[:split], all[split:]}
	hdr := w.Header()
	hdr["Ratelimit-Policy"] = vals[0:1:1]
	hdr["Ratelimit"] = vals[1:2:2]
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(func(key string) (any, bool) {
			switch key {
			case "http.auth.ratelimit.limit":
				return d.Requests, true
			case "http.auth.ratelimit.window":
				return window, true
			case "http.auth.ratelimit.remaining":
				return d.Remaining, true
			case "http.auth.ratelimit.reset":
				return reset, true
			}
			return nil, false
		})
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
