package admin_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAccessLog: Caddy's access log names the caller of every request
// through tokengate_admin whose token verified, the refused ones included,
// as the gateway does (user_id, user_type); requests without a valid token
// name nobody.
func TestAccessLog(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	var uiUsers struct{ Users []struct{ ID string } }
	e.must(e.call("", "GET", "/orgs/"+w.org+"/users?type=ui", nil), 200).json(t, &uiUsers)
	if len(uiUsers.Users) != 1 {
		t.Fatalf("UI users: %+v", uiUsers)
	}
	uiAdminID := uiUsers.Users[0].ID
	org := "/admin/orgs/" + w.org

	cases := []struct {
		name, tok, path  string
		status           int
		userID, userType string
		errorCode        string
	}{
		{"admin, allowed", w.orgAdmin, org, 200, w.orgAdminID, "programmatic", ""},
		{"UI admin, allowed", w.orgAdminUI, org + "/accounts", 200, uiAdminID, "ui", ""},
		{"admin, refused by the route", w.orgAdmin, "/admin/orgs", 403, w.orgAdminID, "programmatic", "forbidden"},
		{"admin, refused another org", w.orgAdmin, "/admin/orgs/" + w.other, 403, w.orgAdminID, "programmatic", "forbidden"},
		{"not an admin, refused", w.orgViewerTok, org, 403, w.orgViewer, "programmatic", "forbidden"},
		{"unknown route", w.orgAdmin, "/admin/nope", 404, w.orgAdminID, "programmatic", "not_found"},
		{"console API", w.orgAdminUI, "/admin/console/api/whoami", 200, uiAdminID, "ui", ""},
		{"console refuses a programmatic token", w.orgAdmin, "/admin/console/", 403, w.orgAdminID, "programmatic", "programmatic_ui_forbidden"},
		{"bad token", "tgp_" + strings.Repeat("x", 46), org, 401, "", "", "unauthorized"},
		{"no token", "", org, 401, "", "", "unauthorized"},
		{"document, no token", "", "/admin/openapi.json", 200, "", "", ""},
	}
	for _, c := range cases {
		req, err := http.NewRequest("GET", e.siteURL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test-Case", c.name)
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Fatalf("%s: %d, want %d", c.name, res.StatusCode, c.status)
		}
	}

	entries := accessLogEntries(t, e.logFile, len(cases))
	for _, c := range cases {
		entry, ok := entries[c.name]
		if !ok {
			t.Errorf("%s: no access log entry", c.name)
			continue
		}
		userType, hasType := entry["user_type"]
		userID, _ := entry["user_id"].(string) // absent: no user either
		if userID != c.userID || (c.userType == "" && hasType) || (c.userType != "" && userType != c.userType) {
			t.Errorf("%s: access log user_id=%q user_type=%v, want %q %q", c.name, userID, userType, c.userID, c.userType)
		}
		if code, _ := entry["error_code"].(string); code != c.errorCode {
			t.Errorf("%s: access log error_code=%q, want %q", c.name, code, c.errorCode)
		}
		// A valid token names its organization and token too.
		if org, tok := entry["org_id"], entry["token_id"]; c.userID != "" && (org != w.org || tok == nil) || c.userID == "" && (org != nil || tok != nil) {
			t.Errorf("%s: access log org_id=%v token_id=%v", c.name, org, tok)
		}
	}
}

// accessLogEntries waits until the log file holds want access log entries
// of requests carrying X-Test-Case, and returns them by that header. The
// access log is written after the response, so the last may lag.
func accessLogEntries(t *testing.T, logFile string, want int) map[string]map[string]any {
	t.Helper()
	entries := map[string]map[string]any{}
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		data, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			var entry map[string]any
			if !strings.Contains(line, "X-Test-Case") || json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			req, _ := entry["request"].(map[string]any)
			headers, _ := req["headers"].(map[string]any)
			names, _ := headers["X-Test-Case"].([]any)
			if len(names) == 1 {
				if name, ok := names[0].(string); ok {
					entries[name] = entry
				}
			}
		}
		if len(entries) >= want || wait > 2*time.Second {
			return entries
		}
		time.Sleep(wait)
	}
}
