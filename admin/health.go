package admin

import (
	"net/http"
	"time"

	"github.com/tokengate/tokengate/module/httpauth"
)

// Health answers GET /health (under /tokengate/ on Caddy's admin endpoint,
// at the mount's root on tokengate_admin): 200 {"status":"ready"} when this
// instance can judge tokens as it should (verify.Readiness), else 503
// {"status":"unavailable","reason":…}. It needs no token and starts nothing
// that Caddy has not started. For load balancers and readiness probes.
//
// On Caddy's admin endpoint, for the operator, the answer also says which
// store and how the watch is doing; on a site, where anyone may ask, it
// says only whether and why not.

// healthPath is the route, relative to the API's root.
const healthPath = "/health"

// health is the answer's body.
type health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Operator only.
	Store          string `json:"store,omitempty"`
	StoreReachable *bool  `json:"store_reachable,omitempty"`
	SyncAge        string `json:"sync_age,omitempty"`
	MaxStale       string `json:"max_stale,omitempty"`
	FilterComplete *bool  `json:"filter_complete,omitempty"`
}

// serveHealth answers a health request; b is nil when the config has no
// tokengate app. detail adds what only the operator may see.
func serveHealth(w http.ResponseWriter, r *http.Request, b *backend, detail bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, []string{http.MethodGet, http.MethodHead})
		return
	}
	if b == nil {
		writeJSON(w, http.StatusServiceUnavailable, health{Status: "unavailable",
			Reason: "tokengate is not configured here"})
		return
	}
	api, err := b.get(r)
	if err != nil {
		h := health{Status: "unavailable", Reason: "the token store cannot be opened"}
		if detail {
			h.Reason += ": " + err.Error()
		}
		httpauth.RetryUnavailable(w.Header())
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	rd := api.verifier.Readiness()
	h := health{Status: "ready"}
	status := http.StatusOK
	if !rd.Ready {
		h.Status, h.Reason, status = "unavailable", rd.Reason, http.StatusServiceUnavailable
		httpauth.RetryUnavailable(w.Header())
	}
	if detail {
		h.Store = api.verifier.Config().StoreName
		h.StoreReachable, h.FilterComplete = &rd.StoreReachable, &rd.FilterComplete
		if rd.StoreReached {
			h.SyncAge = rd.SyncAge.Round(time.Millisecond).String()
		}
		h.MaxStale = rd.MaxStale.String()
	}
	writeJSON(w, status, h)
}
