package admin

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/advice"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/usage"
)

// A window of usage is whole hours; by default the 7 days up to the hour
// under way; at most maxUsageWindow.
const (
	defaultUsageWindow = 7 * 24 * time.Hour
	maxUsageWindow     = 31 * 24 * time.Hour
	defaultAdviceDays  = 30
)

// window reads the query of a usage route: from and to (RFC 3339), and
// nothing else.
func (c *call) window() (from, to time.Time, err error) {
	q, err := query(c.r.URL, "from", "to")
	if err != nil {
		return from, to, err
	}
	return usageWindow(q)
}

// usageWindow reads from and to (RFC 3339) of the query, rounded out to
// whole hours: from down, to up.
func usageWindow(q map[string]string) (from, to time.Time, err error) {
	to = time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	if v := q["to"]; v != "" {
		if to, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, invalid("to", "must be an RFC 3339 time, such as 2026-12-01T00:00:00Z")
		}
	}
	from = to.Add(-defaultUsageWindow)
	if v := q["from"]; v != "" {
		if from, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, invalid("from", "must be an RFC 3339 time, such as 2026-12-01T00:00:00Z")
		}
	}
	// Rounded out to whole hours: a window always covers what was asked.
	from = from.UTC().Truncate(time.Hour)
	if t := to.UTC().Truncate(time.Hour); t.Before(to) {
		to = t.Add(time.Hour)
	} else {
		to = t
	}
	switch {
	case !from.Before(to):
		return from, to, invalid("from", "must be before to")
	case to.Sub(from) > maxUsageWindow:
		return from, to, invalid("from", "must be at most 31 days before to")
	}
	return from, to, nil
}

// userReport reads the usage of one user in [from, to).
func (c *call) userReport(u *store.User, from, to time.Time) (*usage.Report, error) {
	rep := usage.NewReport(from, to)
	rollups, err := c.api.store.UsageOf(c.r.Context(), u.Org, u.ID, rep.Days())
	if err != nil {
		return nil, err
	}
	for _, r := range rollups {
		if err := rep.Add(r.Day, r.Value); err != nil {
			c.api.logger.Warn("skipping a damaged usage rollup", zap.Error(err))
		}
	}
	return rep.Finish(), nil
}

// GET /orgs/{org}/users/{user}/usage?from&to
func getUserUsage(c *call) error {
	u, _, err := c.user()
	if err != nil {
		return err
	}
	from, to, err := c.window()
	if err != nil {
		return err
	}
	rep, err := c.userReport(u, from, to)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		UserID string `json:"user_id"`
		*usage.Report
	}{u.ID, rep})
	return nil
}

// userUsage is one user's line of an organization's usage.
type userUsage struct {
	UserID   string           `json:"user_id"`
	Requests int64            `json:"requests"`
	Refused  int64            `json:"refused"`
	Outcomes map[string]int64 `json:"outcomes"`
}

// GET /orgs/{org}/usage?from&to: every user's totals. Account admins see
// the users they manage.
func getOrgUsage(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	from, to, err := c.window()
	if err != nil {
		return err
	}
	window := usage.NewReport(from, to)
	rollups, err := c.api.store.OrgUsage(c.r.Context(), org, window.Days())
	if err != nil {
		return err
	}
	reports := map[string]*usage.Report{}
	for _, r := range rollups {
		rep := reports[r.User]
		if rep == nil {
			rep = usage.NewReport(from, to)
			reports[r.User] = rep
		}
		if err := rep.Add(r.Day, r.Value); err != nil {
			c.api.logger.Warn("skipping a damaged usage rollup", zap.Error(err))
		}
	}
	var managed map[string]bool
	if !sc.orgWide() {
		if managed, err = c.managedUsers(org, sc); err != nil {
			return err
		}
	}
	out := struct {
		From  time.Time   `json:"from"`
		To    time.Time   `json:"to"`
		Users []userUsage `json:"users"`
	}{From: window.From, To: window.To, Users: []userUsage{}}
	for id, rep := range reports {
		if managed != nil && !managed[id] || rep.Requests == 0 {
			continue
		}
		out.Users = append(out.Users, userUsage{UserID: id, Requests: rep.Requests, Refused: rep.Refused(), Outcomes: rep.Outcomes})
	}
	sort.Slice(out.Users, func(i, j int) bool {
		a, b := out.Users[i], out.Users[j]
		return a.Requests > b.Requests || a.Requests == b.Requests && a.UserID < b.UserID
	})
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// managedUsers are the IDs of the users an account admin manages.
func (c *call) managedUsers(org string, sc scope) (map[string]bool, error) {
	ids := map[string]bool{}
	cursor := ""
	for {
		users, next, err := c.api.store.ListUsers(c.r.Context(), org, store.UserFilter{Level: store.LevelAccount, Account: sc.account}, 500, cursor)
		if err != nil {
			return nil, err
		}
		for i := range users {
			if sc.managesUser(&users[i]) {
				ids[users[i].ID] = true
			}
		}
		if next == "" {
			return ids, nil
		}
		cursor = next
	}
}

// GET /orgs/{org}/users/{user}/advice?days: unused rights and narrower
// ones, from the usage of the last days (default 30, at most 31).
func getUserAdvice(c *call) error {
	u, _, err := c.user()
	if err != nil {
		return err
	}
	q, err := query(c.r.URL, "days")
	if err != nil {
		return err
	}
	days := defaultAdviceDays
	if v := q["days"]; v != "" {
		if days, err = strconv.Atoi(v); err != nil || days < 1 || days > 31 {
			return invalid("days", "must be a number of days from 1 to 31")
		}
	}
	to := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	rep, err := c.userReport(u, to.Add(-time.Duration(days)*24*time.Hour), to)
	if err != nil {
		return err
	}
	var policies []store.Policy
	if u.Role == store.RolePolicy {
		for _, id := range u.Policies {
			p, err := c.api.store.GetPolicy(c.r.Context(), u.Org, id)
			if err != nil {
				continue // deleted meanwhile: nothing of it can be unused
			}
			policies = append(policies, *p)
		}
	}
	writeJSON(c.w, http.StatusOK, advice.For(u, policies, rep))
	return nil
}
