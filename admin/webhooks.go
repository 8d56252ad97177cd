package admin

import (
	"net/http"
	"time"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/webhook"
)

// Webhooks belong to the organization as a whole: the operator and
// organization-level admins manage them; account-level admins and everyone
// else get 403.

// webhookAdmin checks that the caller may manage the webhooks of org.
func (c *call) webhookAdmin(org string) error {
	sc, err := c.admin(org)
	if err != nil {
		return err
	}
	return sc.orgOnly("manage webhooks")
}

// checkWebhookURL judges a webhook URL as the app's settings say: where it
// resolves now must not be restricted, unless webhook_allow_private.
func (c *call) checkWebhookURL(raw string) error {
	_, err := webhook.CheckURL(c.r.Context(), raw, c.api.webhookAllowPrivate, nil)
	return err
}

// POST /orgs/{org}/webhooks {"url", "events", "description"?, "disabled"?}:
// the answer holds the signing secret, this once.
func createWebhook(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	in := store.Webhook{Org: org}
	if err := c.decode(fields{"url": &in.URL, "events": &in.Events, "description": &in.Description, "disabled": &in.Disabled},
		"url", "events"); err != nil {
		return err
	}
	if err := c.checkWebhookURL(in.URL); err != nil {
		return err
	}
	in.Secret = webhook.NewSecret()
	w, err := c.api.store.CreateWebhook(c.r.Context(), in, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusCreated, store.ActionWebhookCreate, w.ID, viewNewWebhook(w))
}

// POST /orgs/{org}/webhooks/{wh}/rotate-secret {"overlap"?} (or no body): a new
// signing secret, in the answer this once. With overlap (a duration, at
// most MaxOverlap) the old secret signs beside it until then; without, it
// stops at once.
func rotateWebhookSecret(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	var overlap time.Duration
	if c.r.ContentLength != 0 { // no body: no overlap
		var raw string
		present, err := c.decodePresent(fields{"overlap": &raw})
		if err != nil {
			return err
		}
		if present["overlap"] {
			if overlap, err = parseOverlap(raw); err != nil {
				return err
			}
		}
	}
	w, err := c.api.store.RotateWebhookSecret(c.r.Context(), org, c.params["wh"], webhook.NewSecret(), overlap, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusOK, store.ActionWebhookUpdate, w.ID, viewNewWebhook(w))
}

// GET /orgs/{org}/webhooks: never a secret.
func listWebhooks(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	if _, err := query(c.r.URL); err != nil {
		return err
	}
	hooks, err := c.api.store.ListWebhooks(c.r.Context(), org)
	if err != nil {
		return err
	}
	out := []webhookView{}
	for i := range hooks {
		out = append(out, viewWebhook(&hooks[i]))
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

// GET /orgs/{org}/webhooks/{wh}: never its secret.
func getWebhook(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	w, err := c.api.store.GetWebhook(c.r.Context(), org, c.params["wh"])
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, viewWebhook(w))
	return nil
}

// PATCH /orgs/{org}/webhooks/{wh} takes url, events, description, disabled.
func patchWebhook(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	var url, description string
	var events []string
	var disabled bool
	present, err := c.decodePresent(fields{"url": &url, "events": &events, "description": &description, "disabled": &disabled})
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return invalid("body", "names nothing to change")
	}
	var change store.WebhookChange
	if present["url"] {
		if err := c.checkWebhookURL(url); err != nil {
			return err
		}
		change.URL = &url
	}
	if present["events"] {
		change.Events = events
		if events == nil {
			change.Events = []string{} // refused as empty, not taken as unchanged
		}
	}
	if present["description"] {
		change.Description = &description
	}
	if present["disabled"] {
		change.Disabled = &disabled
	}
	w, err := c.api.store.UpdateWebhook(c.r.Context(), org, c.params["wh"], change, c.caller.Actor())
	if err != nil {
		return err
	}
	return c.changed(http.StatusOK, store.ActionWebhookUpdate, w.ID, viewWebhook(w))
}

// DELETE /orgs/{org}/webhooks/{wh}: deliveries stop at once.
func deleteWebhook(c *call) error {
	org, id := c.params["org"], c.params["wh"]
	if err := c.webhookAdmin(org); err != nil {
		return err
	}
	if err := c.api.store.DeleteWebhook(c.r.Context(), org, id, c.caller.Actor()); err != nil {
		return err
	}
	return c.changed(http.StatusNoContent, store.ActionWebhookDelete, id, nil)
}

// GET /orgs/{org}/webhooks/{wh}/deliveries?limit=&cursor=: the attempts,
// newest first (the last store.MaxDeliveriesKept of them).
func listDeliveries(c *call) error {
	org := c.params["org"]
	if err := c.webhookAdmin(org); err != nil {
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
	ds, next, err := c.api.store.ListDeliveries(c.r.Context(), org, c.params["wh"], limit, cursor)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryView `json:"deliveries"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}{Deliveries: []deliveryView{}, NextCursor: encodeCursor(next)}
	for i := range ds {
		out.Deliveries = append(out.Deliveries, viewDelivery(&ds[i]))
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
