package webhook

import (
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/store"
)

// expiryWindow is how long before a token's expiry a warning goes out.
type expiryWindow struct {
	name   string
	before time.Duration
}

// expiryWindows, widest first.
var expiryWindows = []expiryWindow{{"7d", 7 * 24 * time.Hour}, {"1d", 24 * time.Hour}}

// warningFor returns the warning a token expiring at is due at now — the
// narrowest window it is inside — and the wider windows, which that
// warning makes moot. ok is false outside every window, or past expiry.
func warningFor(now, at time.Time) (window string, wider []string, ok bool) {
	if !now.Before(at) {
		return "", nil, false
	}
	for i := len(expiryWindows) - 1; i >= 0; i-- {
		if !now.Before(at.Add(-expiryWindows[i].before)) {
			for _, w := range expiryWindows[:i] {
				wider = append(wider, w.name)
			}
			return expiryWindows[i].name, wider, true
		}
	}
	return "", nil, false
}

// scanExpiring looks, every ScanInterval while the term lasts, for tokens
// entering a warning window, and writes token.expiring for each, once.
func (t *term) scanExpiring() {
	t.every(t.e.cfg.ScanInterval, "looking for expiring tokens", t.scanOnce, &t.e.scans)
}

// every runs once at once, then every interval while the term lasts. A
// failure is logged (at debug: the store's health is logged elsewhere),
// a success counted in done.
func (t *term) every(interval time.Duration, what string, once func() error, done *atomic.Int64) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := once(); err != nil && t.ctx.Err() == nil {
			t.e.log.Debug(what, zap.Error(err))
		} else if err == nil {
			done.Add(1)
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *term) scanOnce() error {
	s := t.e.store
	warned, err := s.AllExpiryWarnings(t.ctx)
	if err != nil {
		return err
	}
	now := t.e.cfg.Now()
	return s.ScanTokens(t.ctx, func(tok *store.Token) error {
		if tok.ExpiresAt == nil || tok.ReplacedBy != "" {
			return nil
		}
		window, wider, ok := warningFor(now, *tok.ExpiresAt)
		if !ok || warned[tok.Org+"/"+tok.User+"/"+tok.ID].Has(window, *tok.ExpiresAt) {
			return nil
		}
		wrote, err := s.WarnExpiring(t.ctx, t.lead, tok, window, wider)
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				t.cancel()
			}
			return err
		}
		if wrote {
			metrics.ExpiryWarnings.Inc()
		}
		return nil
	})
}
