package tokengate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/ratelimit"
	"github.com/tokengate/tokengate/module/reading"
	"github.com/tokengate/tokengate/module/report"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
	"github.com/tokengate/tokengate/module/webhook"
)

func init() {
	caddy.RegisterModule(App{})
	// The store's etcd requests reach the gateway's metrics.
	store.SetRequestHook(metrics.ObserveETCD)
}

// DefaultHeaderPrefix starts every identity header sent upstream.
const DefaultHeaderPrefix = "X-Tokengate-"

// App is the tokengate app: where tokengate keeps its data and how it
// caches verified identities. All its fields are optional; without an etcd
// block it runs an embedded single-node etcd under Caddy's data directory.
//
// The etcd connection (and embedded server), the watch and the cache
// outlive config reloads: a reload with the same settings reuses them.
type App struct {
	// Connection to an existing etcd cluster. Absent: embedded etcd.
	Etcd *etcdconn.Config `json:"etcd,omitempty"`

	// Where the embedded etcd keeps its data. Default: tokengate/etcd under
	// Caddy's data directory. Ignored with an etcd block.
	EmbeddedDir string `json:"embedded_dir,omitempty"`

	// Most verified identities held in memory. Default: 100000.
	CacheEntries int `json:"cache_entries,omitempty"`

	// Upper bound on how long a cached identity is trusted without news
	// from etcd; changes normally arrive through etcd's watch at once.
	// Default: 5m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// How long an unknown well-formed token is remembered as unknown.
	// Default: 10s.
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`

	// While etcd is unreachable, cached identities are honoured this long
	// after the last sign of sync; then requests get 503. At most
	// cache_ttl. Default: 1m.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`

	// Prefix of the identity headers sent upstream; every incoming header
	// with this prefix is removed. Must end with "-". Default: X-Tokengate-.
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// Per client IP, how many calls of the public POST /credentials/revoke
	// (reports of leaked credentials, on Caddy's admin endpoint and on
	// tokengate_admin) this instance takes in a window, written
	// "<requests>/<window>"; more are answered 429. IPv6 addresses count
	// per /64. Default: 60/1h.
	ReportLimit string `json:"report_limit,omitempty"`

	// Lets webhooks reach loopback, private, link-local and similar
	// addresses (for tests and receivers on an internal network). Without
	// it, a webhook URL resolving to one is refused when it is saved, and
	// every delivery refuses to connect to one. Default: false.
	WebhookAllowPrivate bool `json:"webhook_allow_private,omitempty"`

	// Whether a starting gateway (and one whose watch lost its history)
	// reads the identities of the tokens used within cache_ttl ahead of
	// their requests, up to cache_entries, while it serves. Default: it
	// does; "off" leaves every token to its first request.
	WarmStart string `json:"warm_start,omitempty"`

	// How long audit events are kept: the gateway delivering webhooks
	// deletes older ones every hour. Default: 90 days.
	AuditRetention caddy.Duration `json:"audit_retention,omitempty"`

	// How long the counts of users' requests (GET …/usage, …/advice) are
	// kept: the gateway delivering webhooks deletes older days every
	// hour. Default: 30 days.
	UsageRetention caddy.Duration `json:"usage_retention,omitempty"`

	connKey     string
	verifierKey string
	cacheConfig verify.Config
	logger      *zap.Logger
	reports     *report.Limiter

	state *appState // made in Provision
}

// appState is whether this config's app has started, shared by the
// goroutines that may start it.
type appState struct {
	mu      sync.Mutex // serialises starting and cleaning up
	running atomic.Pointer[Running]
	cleaned bool
	// opening is closed when the open under way ends; nil when none is.
	// openErr is how the last open failed.
	opening chan struct{}
	openErr error
}

// Running is what a started app works with: the etcd connection, the
// store on it and the identity cache, what takes reports of leaked
// credentials, and the webhook delivery engine.
type Running struct {
	Conn     *etcdconn.Conn
	Store    *store.Store
	Verifier *verify.Verifier
	// Reports limits the reports each client may send; Revoker revokes
	// the live tokens they name.
	Reports *report.Limiter
	Revoker *report.Revoker
	// Webhooks delivers webhooks while this instance leads; the API checks
	// webhook URLs against WebhookAllowPrivate.
	Webhooks            *webhook.Engine
	WebhookAllowPrivate bool
	// Limits keeps users' rate limits, one budget per user across the
	// gateways sharing the cluster.
	Limits *ratelimit.Limiter
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}

// resources are shared by every config that connects the same way: Caddy
// provisions a new config before it stops the old one, and an embedded etcd
// cannot be opened twice.
var resources = caddy.NewUsagePool()

type pooledEngine struct{ *webhook.Engine }

func (p pooledEngine) Destruct() error {
	p.Close()
	return nil
}

type pooledLimiter struct{ *ratelimit.Limiter }

func (p pooledLimiter) Destruct() error {
	p.Close()
	return nil
}

type pooledVerifier struct{ *verify.Verifier }

func (p pooledVerifier) Destruct() error {
	p.Close()
	return nil
}

// Provision checks every setting and prepares the app; it opens nothing,
// so `tokengate validate` works beside a running gateway. Start connects.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.state = new(appState)
	if err := a.Validate(); err != nil {
		return err
	}
	if err := a.fillDefaults(); err != nil {
		return err
	}
	limit, _ := a.reportLimit() // checked by Validate
	a.reports = report.NewLimiter(limit)
	a.cacheConfig = a.cacheSettings()
	cacheKey, err := json.Marshal(a.cacheConfig)
	if err != nil {
		return err
	}
	a.verifierKey = a.connKey + "|" + string(cacheKey)
	if err := metrics.Register(ctx.GetMetricsRegistry(), a.gauges()...); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	return nil
}

// Validate checks every setting without changing any or opening anything.
func (a *App) Validate() error {
	if err := a.checkSettings(); err != nil {
		return err
	}
	if a.Etcd != nil {
		if err := a.Etcd.Validate(); err != nil {
			return fmt.Errorf("etcd: %v", err)
		}
	}
	return nil
}

// checkSettings checks the settings that need neither files nor the
// environment: the Caddyfile checks them when it is adapted.
func (a *App) checkSettings() error {
	for _, r := range []struct {
		name     string
		d, least time.Duration
	}{{"audit_retention", time.Duration(a.AuditRetention), time.Hour}, {"usage_retention", time.Duration(a.UsageRetention), 24 * time.Hour}} {
		if r.d != 0 && r.d < r.least {
			return fmt.Errorf("%s %s: must be at least %s (leave it out for the default)", r.name, r.d, r.least)
		}
	}
	if a.Etcd != nil && a.EmbeddedDir != "" {
		return errors.New("embedded_dir is the embedded etcd's: leave it out with an etcd block")
	}
	if a.HeaderPrefix != "" {
		if err := checkHeaderPrefix(a.HeaderPrefix); err != nil {
			return err
		}
	}
	if a.WarmStart != "" && a.WarmStart != "on" && a.WarmStart != "off" {
		return fmt.Errorf("warm_start must be on or off, not %q", a.WarmStart)
	}
	if _, err := a.reportLimit(); err != nil {
		return err
	}
	return a.cacheSettings().Validate()
}

// cacheSettings are the identity cache's settings, as the app gives them.
func (a *App) cacheSettings() verify.Config {
	return verify.Config{
		CacheEntries: a.CacheEntries,
		CacheTTL:     time.Duration(a.CacheTTL),
		NegativeTTL:  time.Duration(a.NegativeTTL),
		MaxStale:     time.Duration(a.MaxStale),
		NoWarmStart:  a.WarmStart == "off",
	}
}

// Start connects to etcd (or starts the embedded one) and starts the cache,
// or takes those of an earlier config with the same settings.
func (a *App) Start() error {
	_, err := a.Running()
	return err
}

// Running returns what the started app works with, starting it first if
// it has not started yet: Caddy starts apps in no set order, so the HTTP
// server may pass a request to a handler before this app's Start.
func (a *App) Running() (*Running, error) { return a.RunningContext(context.Background()) }

// errUnloaded answers every call after Cleanup: nothing is handed out
// once the config is gone.
var errUnloaded = errors.New("this tokengate config has been unloaded")

// RunningContext is Running for a caller that may stop waiting: a request
// that arrives while the store opens (an embedded etcd starting, an
// external one not answering yet) waits at most until its own context
// ends. One open runs at a time, in the background; every caller waits
// for it.
func (a *App) RunningContext(ctx context.Context) (*Running, error) {
	st := a.state
	if st == nil {
		return nil, errors.New("the tokengate app is not provisioned")
	}
	if r := st.running.Load(); r != nil {
		return r, nil
	}
	st.mu.Lock()
	if st.cleaned {
		st.mu.Unlock()
		return nil, errUnloaded
	}
	if r := st.running.Load(); r != nil {
		st.mu.Unlock()
		return r, nil
	}
	if st.opening == nil {
		st.opening = make(chan struct{})
		go a.openInBackground(st.opening)
	}
	done := st.opening
	st.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the store to open: %w", ctx.Err())
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cleaned {
		return nil, errUnloaded
	}
	if r := st.running.Load(); r != nil {
		return r, nil
	}
	return nil, st.openErr
}

// openInBackground opens the shared resources and makes them this
// config's, unless the config was unloaded meanwhile: then it lets them go
// at once.
func (a *App) openInBackground(done chan struct{}) {
	r, err := a.open()
	st := a.state
	st.mu.Lock()
	defer st.mu.Unlock()
	defer close(done)
	st.opening, st.openErr = nil, err
	if err != nil {
		return
	}
	if st.cleaned {
		_ = a.release(r)
		return
	}
	st.running.Store(r)
}

// open takes the shared resources from the pool, making them if need be.
func (a *App) open() (*Running, error) {
	// Pooled resources outlive this config, so they log through Caddy's
	// default logger rather than this config's.
	longLived := caddy.Log().Named("tokengate")
	val, _, err := resources.LoadOrNew(a.connKey, func() (caddy.Destructor, error) {
		conn, err := etcdconn.Open(a.Etcd, a.EmbeddedDir, longLived)
		if err != nil {
			return nil, err
		}
		checked, err := openChecked(conn, a.connKey, longLived)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return checked, nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening the store: %v", err)
	}
	conn := val.(checkedConn).Conn
	val, _, err = resources.LoadOrNew(a.verifierKey, func() (caddy.Destructor, error) {
		cfg := a.cacheConfig
		cfg.Logger = longLived
		cfg.StoreName = conn.Description
		st := store.New(conn.Client, conn.Prefix)
		st.Writer = "tokengate " + Version()
		v, err := verify.New(st, cfg)
		if err != nil {
			return nil, err
		}
		return pooledVerifier{v}, nil
	})
	if err != nil {
		_, _ = resources.Delete(a.connKey)
		return nil, fmt.Errorf("starting the identity cache: %v", err)
	}
	v := val.(pooledVerifier).Verifier
	val, _, err = resources.LoadOrNew(a.webhooksKey(), func() (caddy.Destructor, error) {
		eng, err := webhook.New(v.Store(), webhook.Config{Logger: longLived.Named("webhooks"), AllowPrivate: a.WebhookAllowPrivate,
			AuditRetention: time.Duration(a.AuditRetention), UsageRetention: time.Duration(a.UsageRetention)})
		if err != nil {
			return nil, err
		}
		eng.Start()
		return pooledEngine{eng}, nil
	})
	if err != nil {
		_, _ = resources.Delete(a.verifierKey)
		_, _ = resources.Delete(a.connKey)
		return nil, fmt.Errorf("starting webhook deliveries: %v", err)
	}
	eng := val.(pooledEngine).Engine
	// Budgets outlive reloads: a reload in the middle of a window neither
	// forgets what was admitted nor registers the gateway twice.
	val, _, err = resources.LoadOrNew(a.limitsKey(), func() (caddy.Destructor, error) {
		s := v.Store()
		return pooledLimiter{ratelimit.New(s.Client(), s.RateLimitPrefix(), ratelimit.Config{Logger: longLived.Named("ratelimit"), Announce: store.Announcement})}, nil
	})
	if err != nil {
		_, _ = resources.Delete(a.webhooksKey())
		_, _ = resources.Delete(a.verifierKey)
		_, _ = resources.Delete(a.connKey)
		return nil, fmt.Errorf("starting rate limits: %v", err)
	}
	limits := val.(pooledLimiter).Limiter
	// The engine outlives reloads; the config loaded last says where its
	// deliveries may go.
	eng.SetAllowPrivate(a.WebhookAllowPrivate)
	eng.SetAuditRetention(time.Duration(a.AuditRetention))
	eng.SetUsageRetention(time.Duration(a.UsageRetention))
	r := &Running{Conn: conn, Store: v.Store(), Verifier: v, Reports: a.reports,
		Revoker:  report.NewRevoker(a.revokeReported(v.Store())),
		Webhooks: eng, WebhookAllowPrivate: a.WebhookAllowPrivate, Limits: limits}
	return r, nil
}

// webhooksKey names the webhook engine in the pool: one per etcd
// connection, whatever the cache settings.
func (a *App) webhooksKey() string { return a.connKey + "|webhooks" }

// limitsKey names the rate limiter in the pool: one per etcd connection.
func (a *App) limitsKey() string { return a.connKey + "|ratelimit" }

// fillDefaults resolves where the data lives and the header prefix.
func (a *App) fillDefaults() error {
	if a.HeaderPrefix == "" {
		a.HeaderPrefix = DefaultHeaderPrefix
	}
	if a.Etcd != nil {
		key, err := json.Marshal(a.Etcd)
		if err != nil {
			return err
		}
		a.connKey = "etcd:" + string(key)
		return nil
	}
	dir, err := etcdconn.EmbeddedDir(a.EmbeddedDir)
	if err != nil {
		return err
	}
	a.EmbeddedDir = dir
	a.connKey = "embedded:" + dir
	return nil
}

// checkHeaderPrefix refuses prefixes that would strip or forge headers
// that are not tokengate's: the prefix must be a header-name token of its
// own, ending with a dash.
func checkHeaderPrefix(p string) error {
	if len(p) < 3 || !strings.HasSuffix(p, "-") {
		return fmt.Errorf("header_prefix %q: must be at least 3 characters and end with '-'", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("header_prefix %q: only letters, digits and '-' are allowed", p)
		}
	}
	// Every incoming header with the prefix is removed: it must not take
	// headers that clients, proxies or the gateway itself rely on.
	lower := strings.ToLower(p)
	for _, h := range sharedHeaders() {
		if strings.HasPrefix(strings.ToLower(h), lower) {
			return fmt.Errorf("header_prefix %q: would remove %s, which is not tokengate's (choose a prefix of your own, such as X-Tokengate-)", p, h)
		}
	}
	for _, family := range sharedHeaderFamilies {
		if strings.HasPrefix(lower, strings.ToLower(family)) {
			return fmt.Errorf("header_prefix %q: lies among the %s… headers, which are not tokengate's (choose a prefix of your own, such as X-Tokengate-)", p, family)
		}
	}
	return nil
}

// sharedHeaderFamilies are header name prefixes of standard and widely
// used headers: an identity prefix inside one would remove them.
var sharedHeaderFamilies = []string{"Accept-", "Access-Control-", "Content-", "If-", "Proxy-", "Sec-", "X-Forwarded-",
	"X-Real-", "X-Auth-", "X-Http-", "X-Request-", "X-Original-", "X-Csrf-", "X-Xsrf-", "X-Amz-", "Cf-", "X-Account-"}

// sharedHeaders are single headers a prefix must not cover: the account
// header the handler judges, the method overrides, and common ones.
func sharedHeaders() []string {
	return append([]string{reading.AccountHeader, "Authorization", "Cookie", "Forwarded", "Host", "Origin", "Referer",
		"User-Agent", "X-Forwarded-For", "X-Real-Ip", "X-Request-Id", "Transfer-Encoding", "Connection", "Upgrade",
		"Cache-Control", "Content-Type", "Content-Length", "Accept", "Traceparent"}, reading.MethodOverrideHeaders...)
}

// gauges read the live state of this config's cache and watch at scrape
// time; before the app has started they read zero.
func (a *App) gauges() []prometheus.Collector {
	running := func(f func(r *Running) float64) func() float64 {
		return func() float64 {
			if r := a.state.running.Load(); r != nil {
				return f(r)
			}
			return 0
		}
	}
	read := func(f func(v *verify.Verifier) float64) func() float64 {
		return running(func(r *Running) float64 { return f(r.Verifier) })
	}
	limits := func(f func(s ratelimit.Stats) float64) func() float64 {
		return running(func(r *Running) float64 { return f(r.Limits.Stats()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Name: "build_info",
			Help:        "Always 1; the labels say which tokengate and Go built this binary.",
			ConstLabels: prometheus.Labels{"version": Version(), "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "cache", Name: "entries",
			Help: "Verdicts held in the cache (identities and remembered unknown tokens).",
		}, read(func(v *verify.Verifier) float64 { return float64(v.Entries()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "watch", Name: "sync_age_seconds",
			Help: "Seconds since the etcd watch was last known to be in sync: the lag of the latest news.",
		}, read(func(v *verify.Verifier) float64 { return v.SyncAge().Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "watch", Name: "last_sync_timestamp_seconds",
			Help: "Unix time at which the etcd watch was last known to be in sync; 0 before the first sync.",
		}, read(func(v *verify.Verifier) float64 {
			if at := v.LastSync(); !at.IsZero() {
				return float64(at.UnixNano()) / 1e9
			}
			return 0
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "webhook", Name: "leader",
			Help: "1 while this instance is the one of the cluster delivering webhooks, else 0.",
		}, running(func(r *Running) float64 {
			if r.Webhooks.Leading() {
				return 1
			}
			return 0
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "ratelimit", Name: "gateways",
			Help: "Gateways sharing rate-limit budgets through etcd, this one included.",
		}, limits(func(s ratelimit.Stats) float64 { return float64(s.Gateways) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "ratelimit", Name: "hot_users",
			Help: "Users near their budget whose demand this gateway exchanges with the others.",
		}, limits(func(s ratelimit.Stats) float64 { return float64(s.Hot) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "tokengate", Subsystem: "ratelimit", Name: "etcd_writes_total",
			Help: "Transactions this gateway sent to etcd to publish or withdraw demand.",
		}, limits(func(s ratelimit.Stats) float64 { return float64(s.Writes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "store", Name: "reachable",
			Help: "1 while etcd answers the watch, 0 when it has been silent for several heartbeats.",
		}, read(func(v *verify.Verifier) float64 {
			if v.Reachable() {
				return 1
			}
			return 0
		})),
	}
}

// Stop is part of caddy.App; shared resources are released in Cleanup.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared resources; the last
// config to let go closes them.
func (a *App) Cleanup() error {
	st := a.state
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.cleaned = true
	r := st.running.Load()
	if r == nil {
		return nil // an open under way lets go of what it opens
	}
	return a.release(r)
}

// release lets go of this config's hold on the shared resources.
func (a *App) release(r *Running) error {
	// The servers of this config have stopped: no report comes any more,
	// and those queued are finished before the store may close.
	r.Revoker.Close()
	_, err0 := resources.Delete(a.limitsKey())
	_, err1 := resources.Delete(a.webhooksKey())
	_, err2 := resources.Delete(a.verifierKey)
	_, err3 := resources.Delete(a.connKey)
	return errors.Join(err0, err1, err2, err3)
}

// Store is where tokengate's data lives; nil if the app cannot start.
func (a *App) Store() *store.Store {
	if r, err := a.Running(); err == nil {
		return r.Store
	}
	return nil
}

// Verifier verifies tokens through the cache; nil if the app cannot start.
func (a *App) Verifier() *verify.Verifier {
	if r, err := a.Running(); err == nil {
		return r.Verifier
	}
	return nil
}

// VerifierContext is Verifier for a request: it waits for the store to
// open no longer than ctx lasts.
func (a *App) VerifierContext(ctx context.Context) *verify.Verifier {
	if r, err := a.RunningContext(ctx); err == nil {
		return r.Verifier
	}
	return nil
}

// Limiter keeps users' rate limits; nil if the app cannot start.
func (a *App) Limiter() *ratelimit.Limiter {
	if r, err := a.Running(); err == nil {
		return r.Limits
	}
	return nil
}

// Conn is the etcd connection; nil if the app cannot start.
func (a *App) Conn() *etcdconn.Conn {
	if r, err := a.Running(); err == nil {
		return r.Conn
	}
	return nil
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ verifierSource     = (*App)(nil)
	_ limiterSource      = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
