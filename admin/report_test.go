package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/reliability"
	"github.com/tokengate/tokengate/module/token"
)

// reportCaddyfile is envCaddyfile with a small report_limit, and Caddy
// trusting X-Forwarded-For from loopback, so that a test can report as any
// client IP.
const reportCaddyfile = `{
	admin 127.0.0.1:{{ADMIN}}
	persist_config off
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
		report_limit 4/1h
	}
	log {
		output file {{LOG}}
		level DEBUG
	}
}

http://127.0.0.1:{{PORT}} {
	log
	handle_path /admin/* {
		tokengate_admin
	}
	route /api/* {
		tokengate api
		respond "ok {http.auth.user.id}"
	}
}
`

// freshness bounds how long a reported token may keep working on any
// gateway in these tests. The contract's bound is etcd's watch delivery
// (cache_ttl, 5m here, only if the watch is broken); a report adds the
// revoker's queue, milliseconds.
const freshness = 5 * time.Second

// reportAs sends POST /credentials/revoke to a mount (e.adminURL, or the
// site's /admin mount) as the client ip, which the site reads from
// X-Forwarded-For; headers are name, value pairs. body is JSON-encoded
// unless it is a string.
func (e *env) reportAs(mount, ip string, body any, headers ...string) resp {
	e.t.Helper()
	data, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		data = string(b)
	}
	req, err := http.NewRequest("POST", mount+"/credentials/revoke", strings.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, body: answer, header: res.Header}
	if res.StatusCode >= 400 {
		r.code = r.field(e.t, "error", "code")
	}
	return r
}

// unknownToken is a well-formed token no one holds; it is remembered as a
// secret, so the logs are checked for it too.
func (e *env) unknownToken() string {
	e.t.Helper()
	s, err := token.Generate(token.Programmatic)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secrets = append(e.secrets, s)
	e.mu.Unlock()
	return s
}

// eventually waits until cond holds, checking every few milliseconds, and
// fails the test when it does not within the deadline. It returns how long
// it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, within)
		case <-tick.C:
		}
	}
	return time.Since(start)
}

// reportWorld is one organization with a programmatic user.
type reportWorld struct {
	org, account, user string
}

func (e *env) reportWorld() reportWorld {
	e.t.Helper()
	w := reportWorld{org: "acme"}
	e.must(e.call("", "POST", "/orgs", map[string]string{"id": w.org, "name": "Acme"}), 201)
	w.account = e.must(e.call("", "POST", "/orgs/"+w.org+"/accounts", map[string]string{"name": "prod"}), 201).field(e.t, "id")
	w.user, _ = e.programmatic(w.org, map[string]any{"level": "account", "account": w.account, "role": "viewer"})
	return w
}

// newToken creates another token of the world's user and returns its id
// and secret.
func (e *env) newToken(w reportWorld) (string, string) {
	e.t.Helper()
	r := e.must(e.call("", "POST", "/orgs/"+w.org+"/users/"+w.user+"/tokens", map[string]any{"name": "t"}), 201)
	return r.field(e.t, "id"), r.field(e.t, "secret")
}

// reportedEvent finds the audit event of a token revoked by report.
func (e *env) reportedEvent(w reportWorld, tokenID string) map[string]any {
	e.t.Helper()
	var list struct{ Events []map[string]any }
	e.must(e.call("", "GET", "/orgs/"+w.org+"/audit", nil), 200).json(e.t, &list)
	for _, ev := range list.Events {
		if ev["target"] == tokenID && ev["action"] == "token.revoke" {
			return ev
		}
	}
	e.t.Fatalf("no token.revoke event for %s in %v", tokenID, list.Events)
	return nil
}

// TestReportRevokesEverywhere: a live token reported on the public route,
// on either mount and without a token, is refused on this gateway and on
// a second gateway instance (another process on the same etcd, with the
// token in its cache) within the freshness bound, and the audit trail
// names the reporter's client IP and the reason.
func TestReportRevokesEverywhere(t *testing.T) {
	e := startEnvWith(t, reportCaddyfile)
	w := e.reportWorld()
	second := reliability.StartGateway(t, reliability.GatewayConfig{Name: "second", Endpoints: []string{e.etcd.Endpoint()},
		Prefix: "/tg", CacheTTL: 5 * time.Minute, Upstream: reliability.EchoUpstream(t)})
	hc := reliability.HTTPClient(t, 5*time.Second)
	ctx := e.ctx()

	for _, c := range []struct {
		name, mount, ip, wantActor string
	}{
		// On the site, Caddy's client IP: here from X-Forwarded-For,
		// which the site trusts from loopback.
		{"tokengate_admin", e.siteURL + "/admin", "203.0.113.9", "203.0.113.9"},
		// Caddy's admin endpoint has no trusted proxies: the peer.
		{"admin endpoint", e.adminURL, "203.0.113.10", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, secret := e.newToken(w)
			e.must(e.gateway(secret, "/api/x"), 200)
			if r := second.Do(ctx, hc, "x", secret); r.Status != 200 {
				t.Fatalf("second gateway before the report: %v", r)
			}

			r := e.reportAs(c.mount, c.ip, map[string]any{"credentials": []string{secret}})
			if r.status != 202 || string(r.body) != "{}\n" {
				t.Fatalf("report: %d %s", r.status, r.body)
			}
			here := eventually(t, freshness, "refused on this gateway", func() bool { return e.gateway(secret, "/api/x").status == 401 })
			there := eventually(t, freshness, "refused on the second gateway", func() bool { return second.Do(ctx, hc, "x", secret).Status == 401 })
			t.Logf("refused here after %s, on the second gateway after %s more", here, there)

			ev := e.reportedEvent(w, id)
			actor, _ := ev["actor"].(map[string]any)
			if actor["id"] != c.wantActor || actor["type"] != "reporter" || ev["reason"] != "reported" || ev["account"] != w.account {
				t.Fatalf("audit event %v", ev)
			}
		})
	}
	// Process-wide counters: at least this test's. The worker counts a
	// revocation after it commits, so a gateway may refuse the token a
	// moment before the count moves.
	eventually(t, freshness, "the report metrics count this test's reports", func() bool {
		m := e.scrape()
		return m["tokengate_report_revocations_total"] >= 2 && m["tokengate_report_requests_total{result=accepted}"] >= 2 &&
			m["tokengate_report_credentials_total"] >= 2
	})
}

// TestReportSameAnswer: live, unknown, malformed and mixed reports all get
// the same answer, 202 {}; a token sent along is ignored, not verified nor
// logged; strict decoding refuses what is not a report.
func TestReportSameAnswer(t *testing.T) {
	e := startEnvWith(t, reportCaddyfile)
	w := e.reportWorld()
	liveID, live := e.newToken(w)
	_, live2 := e.newToken(w)
	adminID, admin := e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin", "accounts": []string{w.account}})
	site := e.siteURL + "/admin"

	cases := []struct {
		name        string
		credentials []string
		headers     []string
	}{
		{"live", []string{live}, nil},
		{"unknown", []string{e.unknownToken()}, nil},
		{"malformed", []string{"tgp_nope", "", strings.Repeat("x", 300), "tgu_" + strings.Repeat("A", 46), live[:len(live)-1] + "!"}, nil},
		{"mixed", []string{"garbage", e.unknownToken(), live2, live2}, nil},
		{"none", []string{}, nil},
		{"a bad token along", []string{e.unknownToken()}, []string{"Authorization", "Bearer tgp_not-a-token"}},
		{"an admin's token along", []string{e.unknownToken()}, []string{"Authorization", "Bearer " + admin}},
		{"a thousand", func() []string {
			out := make([]string, 1000)
			for i := range out {
				out[i] = e.unknownToken()
			}
			return out
		}(), nil},
	}
	var first resp
	for i, c := range cases {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		r := e.reportAs(site, ip, map[string]any{"credentials": c.credentials}, append(c.headers, "X-Test-Case", c.name)...)
		if r.status != 202 || string(r.body) != "{}\n" {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		if i == 0 {
			first = r
			continue
		}
		for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length", "Retry-After", "WWW-Authenticate"} {
			if r.header.Get(h) != first.header.Get(h) {
				t.Errorf("%s: %s %q, the live report's %q", c.name, h, r.header.Get(h), first.header.Get(h))
			}
		}
	}
	eventually(t, freshness, "both live tokens revoked", func() bool {
		return e.gateway(live, "/api/x").status == 401 && e.gateway(live2, "/api/x").status == 401
	})
	e.reportedEvent(w, liveID)

	// A token sent along is not verified: the access log names no user
	// for those reports, while the same token on another route is named.
	req, _ := http.NewRequest("GET", site+"/orgs/"+w.org, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("X-Test-Case", "admin call")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	entries := accessLogEntries(t, e.logFile, len(cases)+1)
	if got := entries["admin call"]["user_id"]; got != adminID {
		t.Fatalf("admin call: access log user_id %v, want %s", got, adminID)
	}
	for _, c := range cases {
		if got := entries[c.name]["user_id"]; got != "" {
			t.Errorf("%s: access log user_id %v: the token sent along was verified", c.name, got)
		}
	}

	// What is not a report is refused, naming what is wrong.
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		code, mentions          string
	}{
		{"more than 1000", fmt.Sprintf(`{"credentials":[%s"x"]}`, strings.Repeat(`"x",`, 1000)), "", 400, "invalid_request", "credentials"},
		{"unknown field", `{"credentials":[],"tokens":[]}`, "", 400, "invalid_request", "tokens"},
		{"no credentials", `{}`, "", 400, "invalid_request", "credentials"},
		{"not strings", `{"credentials":[1]}`, "", 400, "invalid_request", "credentials"},
		{"not JSON", `credentials=tgp_x`, "application/x-www-form-urlencoded", 400, "invalid_request", "Content-Type"},
		{"too large", fmt.Sprintf(`{"credentials":[%q]}`, strings.Repeat("x", 1<<20)), "", 413, "payload_too_large", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			headers := []string{}
			if c.contentType != "" {
				headers = append(headers, "Content-Type", c.contentType)
			}
			r := e.reportAs(site, "192.0.2."+strconv.Itoa(len(c.name)), c.body, headers...)
			if r.status != c.status || r.code != c.code || !strings.Contains(string(r.body), c.mentions) {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	// Another method on the public path: 405, without a token too.
	if r := e.send("", "GET", site+"/credentials/revoke", nil, ""); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d %s, Allow %q", r.status, r.body, r.header.Get("Allow"))
	}
}

// TestReportLimit: report_limit holds per client IP (an IPv6 /64 being
// one), on both mounts alike; over it, 429 rate_limited with Retry-After.
func TestReportLimit(t *testing.T) {
	e := startEnvWith(t, reportCaddyfile) // report_limit 4/1h
	site := e.siteURL + "/admin"
	const limited = "tokengate_report_requests_total{result=rate_limited}"
	before := e.scrape()[limited] // counters are process-wide
	body := map[string]any{"credentials": []string{}}
	for _, c := range []struct {
		name, mount string
		ips         []string // the last is refused
	}{
		{"IPv4 client", site, []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"}},
		{"one IPv6 /64", site, []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3", "2001:db8:0:1:ffff::4", "2001:db8:0:1::5"}},
		{"admin endpoint", e.adminURL, []string{"", "", "", "", ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, ip := range c.ips {
				r := e.reportAs(c.mount, ip, body)
				if i < len(c.ips)-1 {
					e.must(r, 202)
					continue
				}
				if r.status != 429 || r.code != "rate_limited" {
					t.Fatalf("over the limit: %d %s", r.status, r.body)
				}
				secs, err := strconv.Atoi(r.header.Get("Retry-After"))
				if err != nil || secs < 1 || secs > 3600 {
					t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
				}
			}
		})
	}
	// Others are not held back.
	e.must(e.reportAs(site, "192.0.2.2", body), 202)
	e.must(e.reportAs(site, "2001:db8:0:2::1", body), 202)
	if n := e.scrape()[limited] - before; n != 3 {
		t.Fatalf("rate_limited reports counted %v, want 3", n)
	}
}
