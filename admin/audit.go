package admin

import (
	"net/http"
	"slices"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// GET /orgs/{org}/audit?limit=&cursor=&actor=&action=&since=&until=:
// newest first; account admins see their account's events. actor is an
// actor's ID, action one of store.Actions, since and until RFC 3339 times
// (both included).
func listEvents(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	q, err := query(c.r.URL, "limit", "cursor", "actor", "action", "since", "until")
	if err != nil {
		return err
	}
	limit, cursor, err := page(q)
	if err != nil {
		return err
	}
	f := store.EventFilter{Account: sc.account, Actor: q["actor"], Action: q["action"]}
	if f.Action != "" && !slices.Contains(store.Actions, f.Action) {
		return invalid("action", "is not an audit action")
	}
	if len(f.Actor) > 256 {
		return invalid("actor", "is longer than an actor's ID")
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q[t.name]; v != "" {
			if *t.to, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return invalid(t.name, "must be an RFC 3339 time, such as 2026-12-01T00:00:00Z")
			}
		}
	}
	events, next, err := c.api.store.ListEventsWhere(c.r.Context(), org, f, limit, cursor)
	if err != nil {
		return err
	}
	out := struct {
		Events     []eventView `json:"events"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Events: []eventView{}, NextCursor: encodeCursor(next)}
	for i := range events {
		out.Events = append(out.Events, viewEvent(&events[i]))
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
