package admin_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads Caddy's /metrics (on its admin endpoint) into name{labels} →
// value.
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	res, err := http.Get(strings.TrimSuffix(e.adminURL, "/tokengate") + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]float64{}
	for name, fam := range families {
		if !strings.HasPrefix(name, "tokengate_") {
			continue
		}
		for _, m := range fam.Metric {
			key := name + labels(m)
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	if len(m.Label) == 0 {
		return ""
	}
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestMetrics runs a scripted set of requests and checks what the metrics
// count: every result and reason, cache hits and misses, etcd requests,
// admin actions, and the live gauges.
func TestMetrics(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	before := e.scrape()

	_, tok := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	_, remoteTok := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer", "allowed_cidrs": []string{"192.0.2.0/24"}})
	for range 5 {
		e.gateway(tok, "/api/x") // 1 miss, then hits
	}
	e.gateway("", "/api/x")                                         // missing
	e.gateway("", "/ui/home")                                       // untagged UI pass
	e.gateway("tgp_bad", "/api/x")                                  // invalid (malformed)
	e.gateway(tok, "/ui/home")                                      // programmatic_ui_forbidden
	e.send(tok, "DELETE", e.siteURL+"/api/x", nil, "")              // role_forbidden
	e.send(tok, "GET", e.siteURL+"/api/x?accountId="+w.a2, nil, "") // account_forbidden
	e.gateway(w.orgViewerTok, "/api/x")                             // account_required
	e.gateway(remoteTok, "/api/x")                                  // ip_forbidden
	e.syncCache()
	after := e.scrape()

	delta := func(key string) float64 { return after[key] - before[key] }
	want := map[string]float64{
		"tokengate_verifications_total{reason=,result=ok}":                                 5,
		"tokengate_verifications_total{reason=,result=missing}":                            1,
		"tokengate_verifications_total{reason=ui_passed_untagged,result=missing}":          1,
		"tokengate_verifications_total{reason=,result=invalid}":                            1,
		"tokengate_verifications_total{reason=programmatic_ui_forbidden,result=forbidden}": 1,
		"tokengate_verifications_total{reason=role_forbidden,result=forbidden}":            1,
		"tokengate_verifications_total{reason=account_forbidden,result=forbidden}":         1,
		"tokengate_verifications_total{reason=account_required,result=bad_request}":        1,
		"tokengate_verifications_total{reason=ip_forbidden,result=forbidden}":              1,
		"tokengate_admin_actions_total{action=user.create}":                                2,
	}
	for key, n := range want {
		if got := delta(key); got != n {
			t.Errorf("%s went up by %v, want %v", key, got, n)
		}
	}
	// 5 + 3 token verifications on the gateway (4 with the same token), the
	// org viewer's and the remote one's: misses are the first sight of each
	// token.
	if got := delta("tokengate_cache_misses_total"); got != 3 {
		t.Errorf("cache misses went up by %v, want 3", got)
	}
	if got := delta("tokengate_cache_hits_total"); got < 7 {
		t.Errorf("cache hits went up by %v, want at least 7", got)
	}
	if got := delta("tokengate_etcd_request_duration_seconds{operation=lookup}_count"); got < 2 {
		t.Errorf("etcd lookups observed: %v", got)
	}
	if got := delta("tokengate_etcd_request_duration_seconds{operation=txn}_count"); got < 1 {
		t.Errorf("etcd transactions observed: %v", got)
	}
	if after["tokengate_cache_entries"] < 2 || after["tokengate_store_reachable"] != 1 {
		t.Errorf("gauges: entries %v, reachable %v", after["tokengate_cache_entries"], after["tokengate_store_reachable"])
	}
	if age := after["tokengate_watch_sync_age_seconds"]; age < 0 || age > 5 {
		t.Errorf("watch sync age %v s", age)
	}
	if at := after["tokengate_watch_last_sync_timestamp_seconds"]; math.Abs(float64(time.Now().Unix())-at) > 5 {
		t.Errorf("last sync at %v, now %v", at, time.Now().Unix())
	}
	buildInfo := false
	for key, v := range after {
		if strings.HasPrefix(key, "tokengate_build_info{") && strings.Contains(key, "goversion=go") && v == 1 {
			buildInfo = true
		}
	}
	if !buildInfo {
		t.Error("no tokengate_build_info")
	}

	// Store away: unavailable is counted, the gauge drops.
	_, fresh := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	e.etcd.Stop()
	defer e.etcd.Restart()
	mid := e.scrape()
	e.gateway(fresh, "/api/x")
	if got := e.scrape()["tokengate_verifications_total{reason=,result=unavailable}"] - mid["tokengate_verifications_total{reason=,result=unavailable}"]; got != 1 {
		t.Errorf("unavailable went up by %v, want 1", got)
	}
	// A lookup is tried, and its error counted, unless the gateway already
	// knew etcd was down (it then answers without one).
	if got := e.scrape()["tokengate_etcd_request_errors_total{operation=lookup}"]; got < 1 && mid["tokengate_store_reachable"] == 1 {
		t.Errorf("etcd lookup errors: %v", got)
	}
}
