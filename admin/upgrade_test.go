package admin_test

import (
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// TestStoreUpgradeRoute: the operator's upgrade on Caddy's admin endpoint
// answers what it did; a store created at this version needs none; only
// POST, with no body or an empty object; not on a tokengate_admin mount.
func TestStoreUpgradeRoute(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	var got struct {
		Version       int
		Upgraded      bool
		OlderGateways []string `json:"older_gateways"`
	}
	e.must(e.call("", "POST", "/store/upgrade", nil), 200).json(t, &got)
	if got.Version != store.SchemaVersion || got.Upgraded || got.OlderGateways == nil {
		t.Fatalf("upgrade of a store created at this version: %+v", got)
	}
	if r := e.call("", "POST", "/store/upgrade", map[string]any{}); r.status != 200 {
		t.Fatalf("an empty object: %d %s", r.status, r.body)
	}
	if r := e.call("", "POST", "/store/upgrade", map[string]any{"x": 1}); r.status != 400 || r.code != "invalid_request" {
		t.Fatalf("an unknown field: %d %s", r.status, r.body)
	}
	if r := e.call("", "GET", "/store/upgrade", nil); r.status != 405 {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	if r := e.send(w.orgAdmin, "POST", e.siteURL+"/admin/store/upgrade", nil, ""); r.status != 404 {
		t.Fatalf("on the mount: %d %s", r.status, r.body)
	}
}
