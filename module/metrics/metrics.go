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
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/tokengate/module/errcode"
)

const namespace = "tokengate"

// Verification results, the values of the "result" label.
const (
	ResultOK          = "ok"
	ResultMissing     = "missing"
	ResultInvalid     = "invalid"
	ResultExpired     = "expired"
	ResultForbidden   = "forbidden"
	ResultBadRequest  = "bad_request"
	ResultRateLimited = "rate_limited"
	ResultUnavailable = "unavailable"
)

var verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: namespace,
	Name:      "verifications_total",
	Help:      "Requests the gateway decided on, by result; refusals after a valid token by reason (the error code).",
}, []string{"result", "reason"})

// resultOf is the "result" label of a refusal; refusals after a valid
// token also carry their code as the reason.
func resultOf(code errcode.Code) (result, reason string) {
	switch code {
	case errcode.MissingToken:
		return ResultMissing, ""
	case errcode.InvalidToken:
		return ResultInvalid, ""
	case errcode.ExpiredToken:
		return ResultExpired, ""
	case errcode.StoreUnavailable:
		return ResultUnavailable, ""
	}
	switch code.Status() {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return ResultBadRequest, string(code)
	case http.StatusTooManyRequests:
		return ResultRateLimited, string(code)
	}
	return ResultForbidden, string(code)
}

// refusalCodes are the gateway's refusals, resolved once.
var refusalCodes = []errcode.Code{
	errcode.MissingToken, errcode.InvalidToken, errcode.ExpiredToken, errcode.StoreUnavailable,
	errcode.ProgrammaticUIForbidden, errcode.UserTypeForbidden, errcode.AccountRequired,
	errcode.AccountForbidden, errcode.LevelForbidden, errcode.RoleForbidden, errcode.IPForbidden,
	errcode.RateLimited, errcode.PayloadTooLarge, errcode.TooManyHeaders,
}

// Verification counters, resolved once.
var (
	VerifiedOK       = verifications.WithLabelValues(ResultOK, "")
	VerifiedUntagged = verifications.WithLabelValues(ResultMissing, "ui_passed_untagged")
	refused          = map[errcode.Code]prometheus.Counter{}
)

func init() {
	for _, c := range refusalCodes {
		refused[c] = verifications.WithLabelValues(resultOf(c))
	}
}

// Refused counts a request the gateway refused with code.
func Refused(code errcode.Code) {
	if c, ok := refused[code]; ok {
		c.Inc()
		return
	}
	verifications.WithLabelValues(resultOf(code)).Inc()
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

// ObserveETCD records one etcd request of the store: how long it took, by
// operation, and whether it failed (store.SetRequestHook). Each
// operation's observers are resolved once.
func ObserveETCD(op string, took time.Duration, failed bool) {
	o, ok := etcdOps.Load(op)
	if !ok {
		o, _ = etcdOps.LoadOrStore(op, etcdObservers{etcdDuration.WithLabelValues(op), etcdErrors.WithLabelValues(op)})
	}
	obs := o.(etcdObservers)
	obs.duration.Observe(took.Seconds())
	if failed {
		obs.errors.Inc()
	}
}

type etcdObservers struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// etcdOps maps an operation to its observers.
var etcdOps sync.Map

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

// Results of a report of leaked credentials, the values of the "result"
// label of tokengate_report_requests_total.
const (
	ReportAccepted    = "accepted"
	ReportRateLimited = "rate_limited"
	ReportRefused     = "refused" // malformed: a 400 or 413
)

// Reports of leaked credentials (POST /credentials/revoke).
var (
	reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "report", Name: "requests_total",
		Help: "Calls of the public /credentials/revoke, by result: accepted, rate_limited, refused (malformed).",
	}, []string{"result"})
	ReportsAccepted    = reports.WithLabelValues(ReportAccepted)
	ReportsRateLimited = reports.WithLabelValues(ReportRateLimited)
	ReportsRefused     = reports.WithLabelValues(ReportRefused)

	ReportedCredentials = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "report", Name: "credentials_total",
		Help: "Well-formed credentials received in accepted reports, live or not.",
	})
	ReportRevocations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "report", Name: "revocations_total",
		Help: "Live tokens revoked because they were reported.",
	})
)

// The filter of issued tokens (package verify): tokens never issued are
// refused from memory. The gauges are set by the verifier as the filter
// changes. A process usually has one verifier, kept across reloads; configs
// with another etcd connection or other cache settings have their own, and
// the last to change a gauge sets it.
var (
	FilterRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "filter", Name: "refused_total",
		Help: "Tokens refused from memory: the filter says they were never issued, and no etcd lookup was spent.",
	})
	FilterFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "filter", Name: "fallbacks_total",
		Help: "Tokens the filter says were never issued that were looked up in etcd anyway, within the fallback budget (one just issued on another gateway may not have reached this one's watch).",
	})
	FilterBuilds = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "filter", Name: "builds_total",
		Help: "Filters built from a scan of every token digest in etcd.",
	})
	FilterKeys = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "filter", Name: "keys",
		Help: "Token digests the filter holds: those it was built from and those created since.",
	})
	FilterBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "filter", Name: "bytes",
		Help: "Memory of the filter: its fingerprints and the digests of tokens created since it was built.",
	})
)

// Webhook delivery attempts, the values of the "status" label of
// tokengate_webhook_attempts_total: the receiver answered 2xx, the attempt
// failed and another follows, or the event was given up.
const (
	WebhookDelivered = "delivered"
	WebhookRetrying  = "retrying"
	WebhookFailed    = "failed"
)

// Webhooks.
var (
	webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "attempts_total",
		Help: "Webhook delivery attempts made by this instance, by status: delivered, retrying (failed; another follows), failed (given up).",
	}, []string{"status"})
	WebhookAttemptsDelivered = webhookAttempts.WithLabelValues(WebhookDelivered)
	WebhookAttemptsRetrying  = webhookAttempts.WithLabelValues(WebhookRetrying)
	WebhookAttemptsFailed    = webhookAttempts.WithLabelValues(WebhookFailed)

	WebhookLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "delivery_latency_seconds",
		Help:    "From an audit event's time to its receiver's 2xx answer, retries included.",
		Buckets: []float64{.001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 600, 3600, 86400},
	})
	WebhookElections = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "leader_terms_total",
		Help: "Times this instance won the election of the webhook deliverer.",
	})
	ExpiryWarnings = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "expiry_warnings_total",
		Help: "token.expiring events this instance wrote.",
	})
)

// process is every process-wide collector.
var process = []prometheus.Collector{
	verifications, CacheHits, CacheMisses, CacheEvictions, etcdDuration, etcdErrors,
	WatchRestarts, WatchFlushes, adminActions, reports, ReportedCredentials, ReportRevocations,
	webhookAttempts, WebhookLatency, WebhookElections, ExpiryWarnings,
	FilterRefused, FilterFallbacks, FilterBuilds, FilterKeys, FilterBytes,
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
