package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/backoff"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
)

// Config tunes an Engine; zero fields take the defaults.
type Config struct {
	// Logger; default: none.
	Logger *zap.Logger
	// AllowPrivate lets deliveries reach restricted addresses (see
	// Restricted); SetAllowPrivate changes it later.
	AllowPrivate bool
	// Name is what the engine campaigns with: who leads, as etcd shows
	// it. Default: "<hostname> pid <pid>".
	Name string
	// LeaderTTL is the TTL of the leader's etcd lease: how long after a
	// leader dies without resigning another takes over. Whole seconds, at
	// least 1. Default: 5s.
	LeaderTTL time.Duration
	// FirstRetry is the wait after a first failed attempt, doubling after
	// each further one up to MaxRetryInterval (each wait jittered down to
	// half its length). Defaults: 1s and 1h.
	FirstRetry, MaxRetryInterval time.Duration
	// RetryFor is how long an event is retried before it is given up (and
	// recorded as failed). Default: 24h.
	RetryFor time.Duration
	// AttemptTimeout bounds one delivery attempt. Default: 10s.
	AttemptTimeout time.Duration
	// ScanInterval is how often the leader looks for expiring tokens.
	// Default: 1m.
	ScanInterval time.Duration
	// AuditRetention is how long audit events are kept: the leader
	// deletes older ones every PruneInterval; SetAuditRetention changes
	// it later. Default: DefaultAuditRetention.
	AuditRetention time.Duration
	// DormantScanInterval is how often the leader looks for users that
	// made no request for their organization's dormant_after. Default: 1h.
	DormantScanInterval time.Duration
	// UsageRetention is how long request counts (module/usage) are kept:
	// the leader deletes the days before it every PruneInterval;
	// SetUsageRetention changes it later. Default: DefaultUsageRetention.
	UsageRetention time.Duration
	// PruneInterval is how often the leader deletes audit events past
	// AuditRetention and request counts past UsageRetention. Default: 1h.
	PruneInterval time.Duration
	// Now is the clock expiry warnings are judged by. Default: time.Now.
	Now func() time.Time
}

// DefaultAuditRetention is how long audit events are kept by default.
const DefaultAuditRetention = 90 * 24 * time.Hour

// DefaultUsageRetention is how long request counts are kept by default.
const DefaultUsageRetention = 30 * 24 * time.Hour

func (c *Config) fill() error {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s pid %d", host, os.Getpid())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.LeaderTTL, 5*time.Second)
	def(&c.FirstRetry, time.Second)
	def(&c.MaxRetryInterval, time.Hour)
	def(&c.RetryFor, 24*time.Hour)
	def(&c.AttemptTimeout, 10*time.Second)
	def(&c.ScanInterval, time.Minute)
	def(&c.AuditRetention, DefaultAuditRetention)
	def(&c.UsageRetention, DefaultUsageRetention)
	def(&c.PruneInterval, time.Hour)
	def(&c.DormantScanInterval, time.Hour)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LeaderTTL < time.Second || c.FirstRetry <= 0 || c.MaxRetryInterval < c.FirstRetry || c.RetryFor <= 0 ||
		c.AttemptTimeout <= 0 || c.ScanInterval <= 0 || c.AuditRetention <= 0 || c.UsageRetention <= 0 || c.PruneInterval <= 0 || c.DormantScanInterval <= 0 {
		return errors.New("webhook: invalid engine configuration")
	}
	return nil
}

// Engine delivers webhooks while its instance leads the cluster's election.
type Engine struct {
	store        *store.Store
	cfg          Config
	log          *zap.Logger
	allowPrivate atomic.Bool
	retention    atomic.Int64 // audit retention, nanoseconds
	usageKept    atomic.Int64 // usage retention, nanoseconds
	client       *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	leading      atomic.Bool
	terms        atomic.Int64
	scans        atomic.Int64
	dormant      atomic.Int64 // user.dormant events this engine wrote
	dormantScans atomic.Int64
	pruned       atomic.Int64
}

// New returns an engine over a store; Start starts it.
func New(s *store.Store, cfg Config) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	e := &Engine{store: s, cfg: cfg, log: cfg.Logger}
	e.allowPrivate.Store(cfg.AllowPrivate)
	e.retention.Store(int64(cfg.AuditRetention))
	e.usageKept.Store(int64(cfg.UsageRetention))
	dialer := &net.Dialer{Timeout: cfg.AttemptTimeout, KeepAlive: 30 * time.Second,
		Control: dialControl(e.allowPrivate.Load)}
	e.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: the dialer must see the receiver's own address.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.AttemptTimeout,
			ResponseHeaderTimeout: cfg.AttemptTimeout,
		},
		// A redirect is an answer other than 2xx: a failed attempt. Not
		// following it keeps deliveries where the URL was judged.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Start starts campaigning; the engine delivers whenever it leads.
func (e *Engine) Start() {
	e.wg.Go(e.campaign)
}

// closeBound is the longest Close waits for the engine's goroutines.
const closeBound = 3 * time.Second

// Close stops delivering and resigns, so that another instance takes over
// at once. It returns when the engine's goroutines have ended, or after
// closeBound while etcd does not answer: etcd's Election.Campaign, when
// cancelled, resigns with the client's own context, which does not end
// while the client is open, so a follower waiting in the election against
// an unreachable cluster would hold a stop or a reload forever. Such a
// goroutine ends once etcd answers or the connection closes, and does
// nothing else meanwhile.
func (e *Engine) Close() {
	e.cancel()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(closeBound)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		e.log.Warn("webhook election still resigning after " + closeBound.String() +
			": etcd does not answer; it ends when etcd answers or the connection closes")
	}
	e.client.CloseIdleConnections()
}

// SetAllowPrivate changes whether deliveries may reach restricted
// addresses (the last config loaded decides).
func (e *Engine) SetAllowPrivate(allow bool) { e.allowPrivate.Store(allow) }

// Leading reports whether this instance delivers webhooks now.
func (e *Engine) Leading() bool { return e.leading.Load() }

// Terms counts the times this engine won the election.
func (e *Engine) Terms() int64 { return e.terms.Load() }

// Scans counts the expiry scans this engine completed as leader.
func (e *Engine) Scans() int64 { return e.scans.Load() }

// campaign runs for the engine's life: it wins the election, delivers
// while it leads, and campaigns again when it loses.
func (e *Engine) campaign() {
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for e.ctx.Err() == nil {
		if err := e.termOnce(); err != nil && e.ctx.Err() == nil {
			e.log.Debug("webhook election: trying again", zap.Error(err))
			bo.Wait(e.ctx)
			continue
		}
		bo.Reset()
	}
}

// termOnce makes a session, campaigns, and leads until the session or the
// engine ends.
func (e *Engine) termOnce() error {
	client := e.store.Client()
	// The session lives on the engine's context: its lease is kept alive
	// until the engine closes (then revoked below) or etcd lets it expire.
	sess, err := concurrency.NewSession(client, concurrency.WithTTL(int(e.cfg.LeaderTTL/time.Second)),
		concurrency.WithContext(e.ctx))
	if err != nil {
		return fmt.Errorf("starting an etcd session: %w", err)
	}
	defer func() {
		// Resigning, or revoking the lease, lets another instance take
		// over at once rather than after the lease's TTL.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		sess.Orphan()
		_, _ = client.Revoke(ctx, sess.Lease())
	}()
	// Campaigning ends with the session: a lease that expired while
	// waiting must not win an election it no longer stands in.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, e.store.WebhookLeaderPrefix())
	if err := el.Campaign(ctx, e.cfg.Name); err != nil {
		return fmt.Errorf("campaigning: %w", err)
	}
	lead := store.Leadership{Key: el.Key(), Rev: el.Rev()}
	// Campaign may return after the key was lost; check it is ours.
	resp, err := client.Get(ctx, lead.Key)
	if err != nil {
		return fmt.Errorf("reading the leader key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != lead.Rev {
		return errors.New("elected with a lease that is gone")
	}
	e.terms.Add(1)
	metrics.WebhookElections.Inc()
	e.log.Info("delivering webhooks: this instance leads", zap.String("leader_key", lead.Key))
	e.leading.Store(true)
	t := newTerm(e, ctx, cancel, lead)
	t.run()
	e.leading.Store(false)
	if e.ctx.Err() == nil {
		e.log.Warn("no longer delivering webhooks: leadership lost")
	}
	return nil
}

// retryWait is the wait after the attempt-th failed attempt of an event:
// FirstRetry doubled per attempt, capped at MaxRetryInterval, jittered to
// between half and all of it.
func (e *Engine) retryWait(attempt int) time.Duration {
	d := e.cfg.MaxRetryInterval
	if attempt < 40 {
		d = min(e.cfg.FirstRetry<<(attempt-1), e.cfg.MaxRetryInterval)
	}
	if d <= 0 {
		d = e.cfg.MaxRetryInterval
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
