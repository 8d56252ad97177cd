package webhook

import (
	"errors"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// scanDormant looks, every DormantScanInterval while the term lasts, for
// users that made no request for their organization's dormant_after, and
// writes user.dormant for each, once until it is used again.
func (t *term) scanDormant() {
	t.every(t.e.cfg.DormantScanInterval, "looking for dormant users", t.dormantOnce, &t.e.dormantScans)
}

// DormantReported counts the user.dormant events this engine wrote.
func (e *Engine) DormantReported() int64 { return e.dormant.Load() }

// DormantScans counts this engine's completed looks for dormant users.
func (e *Engine) DormantScans() int64 { return e.dormantScans.Load() }

func (t *term) dormantOnce() error {
	s := t.e.store
	orgs, err := s.ListOrgs(t.ctx)
	if err != nil {
		return err
	}
	idleFor := map[string]time.Duration{}
	for i := range orgs {
		idleFor[orgs[i].ID] = orgs[i].Dormancy()
	}
	active, err := s.LastActivity(t.ctx)
	if err != nil {
		return err
	}
	reported, err := s.DormancyReported(t.ctx)
	if err != nil {
		return err
	}
	now := t.e.cfg.Now()
	return s.ScanUsers(t.ctx, func(u *store.User) error {
		key := u.Org + "/" + u.ID
		last := u.CreatedAt
		if a := active[key]; a.After(last) {
			last = a
		}
		after, ok := idleFor[u.Org]
		if u.Disabled || !ok || now.Sub(last) < after || reported[key].Equal(last) {
			return nil
		}
		wrote, err := s.ReportDormant(t.ctx, t.lead, u.Org, u.ID, last, now)
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				t.cancel()
			}
			return err
		}
		if wrote {
			t.e.dormant.Add(1)
		}
		return nil
	})
}
