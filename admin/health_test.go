package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getHealth asks url for health and decodes the answer.
func getHealth(t *testing.T, method, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if method == http.MethodHead {
		return res.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, url, res.StatusCode, body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q", url, cc)
	}
	return res.StatusCode, m
}

// waitHealth waits until url answers status, and returns the answer.
func waitHealth(t *testing.T, url string, status int, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, m := getHealth(t, http.MethodGet, url)
		if got == status {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d %v after %v, want %d", url, got, m, within, status)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// TestHealth: the readiness answer on Caddy's admin endpoint (with detail)
// and on a tokengate_admin mount (whether and why not, nothing else),
// without a token; ready while etcd answers, still ready through a short
// outage, 503 with the reason past max_stale, ready again when etcd is
// back.
func TestHealth(t *testing.T) {
	caddyfile := strings.Replace(envCaddyfile, "\t\t\tprefix /tg\n\t\t}\n", "\t\t\tprefix /tg\n\t\t}\n\t\tmax_stale 2s\n", 1)
	if caddyfile == envCaddyfile {
		t.Fatal("max_stale not set")
	}
	e := startEnvWith(t, caddyfile)
	operator, site := e.adminURL+"/health", e.siteURL+"/admin/health"

	m := waitHealth(t, operator, 200, 20*time.Second)
	if m["status"] != "ready" || m["store"] == nil || m["filter_complete"] != true || m["store_reachable"] != true {
		t.Fatalf("operator's health %v", m)
	}
	status, m := getHealth(t, http.MethodGet, site)
	if status != 200 || len(m) != 1 || m["status"] != "ready" {
		t.Fatalf("site's health: %d %v, want only the status", status, m)
	}
	if status, _ := getHealth(t, http.MethodHead, site); status != 200 {
		t.Fatalf("HEAD: %d", status)
	}
	if status, m := getHealth(t, http.MethodPost, operator); status != 405 {
		t.Fatalf("POST: %d %v", status, m)
	}

	e.etcd.Stop()
	m = waitHealth(t, site, 503, 20*time.Second)
	if m["status"] != "unavailable" || !strings.Contains(m["reason"].(string), "max_stale") || len(m) != 2 {
		t.Fatalf("site's health while etcd is down: %v", m)
	}
	_, m = getHealth(t, http.MethodGet, operator)
	if m["store_reachable"] != false || m["sync_age"] == nil {
		t.Fatalf("operator's health while etcd is down: %v", m)
	}

	e.etcd.Restart()
	waitHealth(t, site, 200, 30*time.Second)
}
