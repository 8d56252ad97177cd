// Package metrics holds tokengate's Prometheus metrics. They appear on
// Caddy's /metrics like Caddy's own.
//
// Counters are process-wide, so they keep counting across config reloads
// (each config gets a fresh registry; the same counters are registered in
// every one). Values read from live state — cache entries, the watch — are
// registered per config by the tokengate app.
//
// On the request path nothing is looked up by label: each outcome has its
// counter resolved once, here.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "tokengate"

// Verification results, the values of the "result" label.
const (
	ResultOK          = "ok"
	ResultMissing     = "missing"
	ResultInvalid     = "invalid"
	ResultExpired     = "expired"
	ResultForbidden   = "forbidden"
	ResultUnavailable = "unavailable"
)

var verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: namespace,
	Name:      "verifications_total",
	Help:      "Requests the gateway decided on, by result; forbidden ones by reason (the error code).",
}, []string{"result", "reason"})

// forbiddenReasons are the error codes of requests refused after a valid
// token: the "reason" label of result "forbidden".
var forbiddenReasons = []string{
	"programmatic_ui_forbidden", "user_type_forbidden", "account_required",
	"account_forbidden", "level_forbidden", "role_forbidden",
}

// Verification counters, resolved once.
var (
	VerifiedOK          = verifications.WithLabelValues(ResultOK, "")
	VerifiedMissing     = verifications.WithLabelValues(ResultMissing, "")
	VerifiedUntagged    = verifications.WithLabelValues(ResultMissing, "ui_passed_untagged")
	VerifiedInvalid     = verifications.WithLabelValues(ResultInvalid, "")
	VerifiedExpired     = verifications.WithLabelValues(ResultExpired, "")
	VerifiedUnavailable = verifications.WithLabelValues(ResultUnavailable, "")
	verifiedForbidden   = map[string]prometheus.Counter{}
)

func init() {
	for _, r := range forbiddenReasons {
		verifiedForbidden[r] = verifications.WithLabelValues(ResultForbidden, r)
	}
}

// Forbidden counts a request refused for reason (an error code).
func Forbidden(reason string) {
	if c, ok := verifiedForbidden[reason]; ok {
		c.Inc()
		return
	}
	verifications.WithLabelValues(ResultForbidden, reason).Inc()
}

// Cache counters.
var (
	CacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "cache", Name: "hits_total",
		Help: "Verifications answered from the cache, unknown tokens remembered included.",
	})
	CacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "cache", Name: "misses_total",
		Help: "Verifications that had to read etcd.",
	})
	CacheEvictions = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "cache", Name: "evictions_total",
		Help: "Cached verdicts dropped for room or age.",
	})
)

// etcd requests.
var (
	etcdDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "etcd", Name: "request_duration_seconds",
		Help:    "Time of etcd requests made by tokengate, by operation.",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"operation"})
	etcdErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "etcd", Name: "request_errors_total",
		Help: "etcd requests that failed, by operation.",
	}, []string{"operation"})
)

// Operations of the etcd metrics.
const (
	OpLookup = "lookup" // reading a token for a verification
	OpRead   = "read"   // admin reads
	OpTxn    = "txn"    // admin changes
	OpUsage  = "usage"  // recording last use
)

// ETCD returns the observers of one operation, resolved once.
func ETCD(op string) (prometheus.Observer, prometheus.Counter) {
	return etcdDuration.WithLabelValues(op), etcdErrors.WithLabelValues(op)
}

// Watch and admin.
var (
	WatchRestarts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "watch", Name: "restarts_total",
		Help: "Times the etcd watch had to be started again (broken stream, compaction).",
	})
	WatchFlushes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "watch", Name: "flushes_total",
		Help: "Times the whole cache was dropped because etcd history was compacted past the watch.",
	})
	adminActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "admin", Name: "actions_total",
		Help: "Changes made through the admin API, by action.",
	}, []string{"action"})
)

// AdminAction counts one change made through the admin API.
func AdminAction(action string) { adminActions.WithLabelValues(action).Inc() }

// process is every process-wide collector.
var process = []prometheus.Collector{
	verifications, CacheHits, CacheMisses, CacheEvictions, etcdDuration, etcdErrors,
	WatchRestarts, WatchFlushes, adminActions,
}

// Register adds tokengate's process-wide metrics and the given per-config
// collectors to a config's registry. Registering twice is harmless.
func Register(reg prometheus.Registerer, perConfig ...prometheus.Collector) error {
	for _, c := range append(process[:len(process):len(process)], perConfig...) {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}
