package webhook

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/store"
)

// upgradeSchema moves the store's schema on once every registered gateway
// writes the newer version, and back should one that does not appear
// (store.Upgrade), at once and then every UpgradeInterval while the term
// lasts. The gateways holding an upgrade back are logged when they change.
func (t *term) upgradeSchema() {
	tick := time.NewTicker(t.e.cfg.UpgradeInterval)
	defer tick.Stop()
	var holdouts []string
	for {
		start := time.Now()
		res, err := t.e.store.Upgrade(t.ctx)
		switch {
		case err != nil && t.ctx.Err() == nil:
			t.e.log.Debug("upgrading the store's schema", zap.Error(err))
		case res.Upgraded:
			t.e.log.Info("store schema upgraded: lookups read one key", zap.Int("version", res.Version),
				zap.Int("users_recopied", res.Copies), zap.Duration("took", time.Since(start)))
		case res.Downgraded:
			t.e.log.Error("store schema moved back: a gateway of an older version is registered; stop it, and the store upgrades again",
				zap.Int("version", res.Version), zap.Strings("gateways", res.Holdouts))
		case res.Version < store.SchemaVersion && len(res.Holdouts) > 0 && !slices.Equal(res.Holdouts, holdouts):
			t.e.log.Info("store schema upgrade waits for gateways of an older version to stop",
				zap.Int("version", res.Version), zap.Strings("gateways", res.Holdouts))
		}
		if err == nil {
			holdouts = res.Holdouts
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
	}
}
