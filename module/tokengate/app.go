package tokengate

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/verify"
)

func init() {
	caddy.RegisterModule(App{})
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

	connKey     string
	verifierKey string
	conn        *etcdconn.Conn
	store       *store.Store
	verifier    *verify.Verifier
	logger      *zap.Logger
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

type pooledConn struct{ *etcdconn.Conn }

func (p pooledConn) Destruct() error { return p.Close() }

type pooledVerifier struct{ *verify.Verifier }

func (p pooledVerifier) Destruct() error {
	p.Close()
	return nil
}

// Provision connects to etcd (or starts the embedded one) and starts the
// cache, or reuses those of a previous config with the same settings.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.fillDefaults(); err != nil {
		return err
	}
	cfg := verify.Config{
		CacheEntries: a.CacheEntries,
		CacheTTL:     time.Duration(a.CacheTTL),
		NegativeTTL:  time.Duration(a.NegativeTTL),
		MaxStale:     time.Duration(a.MaxStale),
	}
	cacheKey, err := json.Marshal(cfg)
	if err != nil {
		return err
	}

	// Pooled resources outlive this config, so they log through Caddy's
	// default logger rather than this config's.
	longLived := caddy.Log().Named("tokengate")
	val, _, err := resources.LoadOrNew(a.connKey, func() (caddy.Destructor, error) {
		conn, err := etcdconn.Open(a.Etcd, a.EmbeddedDir, longLived)
		if err != nil {
			return nil, err
		}
		return pooledConn{conn}, nil
	})
	if err != nil {
		return fmt.Errorf("opening the store: %v", err)
	}
	a.conn = val.(pooledConn).Conn

	a.verifierKey = a.connKey + "|" + string(cacheKey)
	val, _, err = resources.LoadOrNew(a.verifierKey, func() (caddy.Destructor, error) {
		cfg.Logger = longLived.Named("cache")
		v, err := verify.New(store.New(a.conn.Client, a.conn.Prefix), cfg)
		if err != nil {
			return nil, err
		}
		return pooledVerifier{v}, nil
	})
	if err != nil {
		_, _ = resources.Delete(a.connKey)
		a.conn = nil
		return fmt.Errorf("starting the identity cache: %v", err)
	}
	a.verifier = val.(pooledVerifier).Verifier
	a.store = a.verifier.Store()
	if err := metrics.Register(ctx.GetMetricsRegistry(), a.gauges()...); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	a.logger.Info("tokengate ready", zap.String("store", a.conn.Description), zap.String("prefix", a.conn.Prefix))
	return nil
}

// fillDefaults resolves where the data lives and checks the settings that
// are the app's own.
func (a *App) fillDefaults() error {
	if a.HeaderPrefix == "" {
		a.HeaderPrefix = DefaultHeaderPrefix
	}
	if err := checkHeaderPrefix(a.HeaderPrefix); err != nil {
		return err
	}
	if a.CacheEntries < 0 {
		return errors.New("cache_entries must not be negative")
	}
	if a.Etcd != nil {
		key, err := json.Marshal(a.Etcd)
		if err != nil {
			return err
		}
		a.connKey = "etcd:" + string(key)
		return nil
	}
	dir := caddy.NewReplacer().ReplaceAll(a.EmbeddedDir, "")
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "tokengate", "etcd")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("embedded_dir: %v", err)
	}
	a.EmbeddedDir = abs
	a.connKey = "embedded:" + abs
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
	return nil
}

// gauges read the live state of this config's cache and watch at scrape
// time.
func (a *App) gauges() []prometheus.Collector {
	v := a.verifier
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "cache", Name: "entries",
			Help: "Verdicts held in the cache (identities and remembered unknown tokens).",
		}, func() float64 { return float64(v.Entries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "watch", Name: "sync_age_seconds",
			Help: "Seconds since the etcd watch was last known to be in sync: the lag of the latest news.",
		}, func() float64 { return v.SyncAge().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tokengate", Subsystem: "store", Name: "reachable",
			Help: "1 while etcd answers the watch, 0 when it has been silent for several heartbeats.",
		}, func() float64 {
			if v.Reachable() {
				return 1
			}
			return 0
		}),
	}
}

// Start is part of caddy.App; the work happens in Provision.
func (a *App) Start() error { return nil }

// Stop is part of caddy.App; shared resources are released in Cleanup.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared resources; the last
// config to let go closes them.
func (a *App) Cleanup() error {
	var errs []error
	if a.verifier != nil {
		if _, err := resources.Delete(a.verifierKey); err != nil {
			errs = append(errs, err)
		}
		a.verifier = nil
	}
	if a.conn != nil {
		if _, err := resources.Delete(a.connKey); err != nil {
			errs = append(errs, err)
		}
		a.conn = nil
	}
	return errors.Join(errs...)
}

// Store is where tokengate's data lives.
func (a *App) Store() *store.Store { return a.store }

// Verifier verifies tokens through the cache.
func (a *App) Verifier() *verify.Verifier { return a.verifier }

// Conn is the etcd connection.
func (a *App) Conn() *etcdconn.Conn { return a.conn }

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
