package admin

import "net/http"

// GET /orgs/{org}/audit?limit=&cursor=: newest first; account admins see
// their account's events.
func listEvents(c *call) error {
	org := c.params["org"]
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	q, err := query(c.r.URL, "limit", "cursor")
	if err != nil {
		return err
	}
	limit, cursor, err := page(q)
	if err != nil {
		return err
	}
	events, next, err := c.api.store.ListEvents(c.r.Context(), org, sc.account, limit, cursor)
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
