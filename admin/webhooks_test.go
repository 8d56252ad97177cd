package admin_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/tokengate"
)

// privateCaddyfile is envCaddyfile with webhook_allow_private, so that
// webhooks may reach receivers on loopback.
var privateCaddyfile = strings.Replace(envCaddyfile, "\t\t\tprefix /tg\n\t\t}\n", "\t\t\tprefix /tg\n\t\t}\n\t\twebhook_allow_private\n", 1)

var webhookSecretPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)

// TestWebhookCRUD: create (the secret once), read, list, change, delete,
// each with its audit event; the secret never again.
func TestWebhookCRUD(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	org := "/orgs/" + w.org
	for _, mount := range []struct{ name, tok string }{{"operator", ""}, {"org admin", w.orgAdmin}} {
		t.Run(mount.name, func(t *testing.T) {
			tok := mount.tok
			created := e.must(e.call(tok, "POST", org+"/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook",
				"events": []string{"token.revoke", "token.expiring"}, "description": "leaks"}), 201)
			var hook struct {
				ID, Org, URL, Description, Secret string
				Events                            []string
				Disabled                          bool
			}
			created.json(t, &hook)
			if !regexp.MustCompile(`^wh-[0-9a-f]{8}$`).MatchString(hook.ID) || !webhookSecretPattern.MatchString(hook.Secret) ||
				hook.Org != w.org || hook.URL != "http://127.0.0.1:9/hook" || hook.Disabled || len(hook.Events) != 2 {
				t.Fatalf("created %s", created.body)
			}
			for _, path := range []string{org + "/webhooks", org + "/webhooks/" + hook.ID} {
				r := e.must(e.call(tok, "GET", path, nil), 200)
				if strings.Contains(string(r.body), hook.Secret[6:]) || strings.Contains(string(r.body), `"secret"`) {
					t.Fatalf("GET %s shows the secret: %s", path, r.body)
				}
				if !strings.Contains(string(r.body), hook.ID) {
					t.Fatalf("GET %s: %s", path, r.body)
				}
			}
			patched := e.must(e.call(tok, "PATCH", org+"/webhooks/"+hook.ID, map[string]any{"events": []string{"*"}, "disabled": true}), 200)
			if patched.field(t, "description") != "leaks" || !strings.Contains(string(patched.body), `"events":["*"]`) ||
				!strings.Contains(string(patched.body), `"disabled":true`) || strings.Contains(string(patched.body), "secret") {
				t.Fatalf("patched: %s", patched.body)
			}
			e.must(e.call(tok, "GET", org+"/webhooks/"+hook.ID+"/deliveries?limit=5", nil), 200)
			e.must(e.call(tok, "DELETE", org+"/webhooks/"+hook.ID, nil), 204)
			e.must(e.call(tok, "GET", org+"/webhooks/"+hook.ID, nil), 404)
			e.must(e.call(tok, "GET", org+"/webhooks/"+hook.ID+"/deliveries", nil), 404)
			var audit struct {
				Events []struct{ ID, Action, Target string }
			}
			e.must(e.call(tok, "GET", org+"/audit?limit=3", nil), 200).json(t, &audit)
			var got []string
			for _, ev := range audit.Events {
				if ev.Target == hook.ID {
					got = append(got, ev.Action)
				}
				if ev.ID == "" {
					t.Errorf("an audit event without its id")
				}
			}
			if !slices.Equal(got, []string{"webhook.delete", "webhook.update", "webhook.create"}) {
				t.Fatalf("audit of the webhook: %v", got)
			}
		})
	}

	// Refusals naming the field.
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"events": []string{"*"}}, "url"},
		{map[string]any{"url": "http://127.0.0.1:9/"}, "events"},
		{map[string]any{"url": "ftp://127.0.0.1/", "events": []string{"*"}}, "url"},
		{map[string]any{"url": "http://127.0.0.1:99999/", "events": []string{"*"}}, "url"},
		{map[string]any{"url": "http://127.0.0.1:0/", "events": []string{"*"}}, "url"},
		{map[string]any{"url": "http://127.0.0.1:0080/", "events": []string{"*"}}, "url"},
		{map[string]any{"url": "http://127.0.0.1/", "events": []string{}}, "events"},
		{map[string]any{"url": "http://127.0.0.1/", "events": []string{"user.vanish"}}, "events"},
		{map[string]any{"url": "http://127.0.0.1/", "events": []string{"*", "user.create"}}, "events"},
		{map[string]any{"url": "http://127.0.0.1/", "events": []string{"*"}, "secret": "whsec_mine"}, "secret"},
	} {
		r := e.call("", "POST", org+"/webhooks", tc.body)
		if r.status != 400 || r.code != "invalid_request" || !strings.HasPrefix(r.field(t, "error", "message"), tc.field) {
			t.Errorf("%v: %d %s, want 400 naming %s", tc.body, r.status, r.body, tc.field)
		}
	}
	id := e.must(e.call("", "POST", org+"/webhooks", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}), 201).field(t, "id")
	if r := e.call("", "PATCH", org+"/webhooks/"+id, map[string]any{}); r.status != 400 {
		t.Errorf("an empty PATCH: %d %s", r.status, r.body)
	}
	if r := e.call("", "PATCH", org+"/webhooks/"+id, map[string]any{"secret": "x"}); r.status != 400 {
		t.Errorf("PATCH of the secret: %d %s", r.status, r.body)
	}
	if r := e.call("", "GET", org+"/webhooks/wh-00000000", nil); r.status != 404 {
		t.Errorf("an unknown webhook: %d %s", r.status, r.body)
	}

	// Rotating the secret: a new one, shown this once; the old one's end
	// shown (never the old secret); an overlap past 90 days refused.
	created := e.must(e.call("", "POST", org+"/webhooks", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}), 201)
	old := created.field(t, "secret")
	rotated := e.must(e.call("", "POST", org+"/webhooks/"+created.field(t, "id")+"/rotate-secret", map[string]any{"overlap": "24h"}), 200)
	if s := rotated.field(t, "secret"); s == old || !webhookSecretPattern.MatchString(s) || strings.Contains(string(rotated.body), old[6:]) ||
		!strings.Contains(string(rotated.body), "previous_secret_expires_at") {
		t.Errorf("rotated: %s", rotated.body)
	}
	got := e.must(e.call("", "GET", org+"/webhooks/"+created.field(t, "id"), nil), 200)
	if strings.Contains(string(got.body), `"secret"`) || strings.Contains(string(got.body), "previous_secret\"") ||
		!strings.Contains(string(got.body), "previous_secret_expires_at") {
		t.Errorf("after a rotation: %s", got.body)
	}
	for _, body := range []any{map[string]any{"overlap": "91d"}, map[string]any{"overlap": "-1h"}, map[string]any{"overlap": 5},
		map[string]any{"secret": "whsec_mine"}} {
		if r := e.call("", "POST", org+"/webhooks/"+created.field(t, "id")+"/rotate-secret", body); r.status != 400 {
			t.Errorf("rotate-secret %v: %d %s", body, r.status, r.body)
		}
	}
	if r := e.call("", "POST", org+"/webhooks/"+created.field(t, "id")+"/rotate-secret", nil); r.status != 200 ||
		strings.Contains(string(r.body), "previous_secret_expires_at") {
		t.Errorf("rotate-secret without a body (no overlap): %d %s", r.status, r.body)
	}
}

// TestWebhookAuthorization: organization-level admins and the operator
// manage webhooks; account admins, other roles and other organizations'
// admins get 403.
func TestWebhookAuthorization(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	org := "/orgs/" + w.org
	newHook := func() string {
		return e.must(e.call("", "POST", org+"/webhooks", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}), 201).field(t, "id")
	}
	type request struct {
		method, path string
		body         any
		want         int // for those allowed
	}
	requests := func(hook string) []request {
		return []request{
			{"POST", org + "/webhooks", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}, 201},
			{"GET", org + "/webhooks", nil, 200},
			{"GET", org + "/webhooks/" + hook, nil, 200},
			{"PATCH", org + "/webhooks/" + hook, map[string]any{"description": "changed"}, 200},
			{"GET", org + "/webhooks/" + hook + "/deliveries", nil, 200},
			{"POST", org + "/webhooks/" + hook + "/rotate-secret", map[string]any{"overlap": "1h"}, 200},
			{"DELETE", org + "/webhooks/" + hook, nil, 204},
		}
	}
	hook := newHook()
	for _, caller := range []struct{ name, tok string }{
		{"account admin", w.acctAdminA1},
		{"viewer", w.viewerA1},
		{"editor", w.editorA1},
		{"organization viewer", w.orgViewerTok},
		{"other organization's admin", w.otherOrgAdmin},
	} {
		for _, rq := range requests(hook) {
			if r := e.call(caller.tok, rq.method, rq.path, rq.body); r.status != 403 || r.code != "forbidden" {
				t.Errorf("%s: %s %s: %d %s, want 403", caller.name, rq.method, rq.path, r.status, r.body)
			}
		}
	}
	if r := e.send("", "GET", e.siteURL+"/admin"+org+"/webhooks", nil, ""); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
	for _, caller := range []struct{ name, tok string }{
		{"programmatic organization admin", w.orgAdmin},
		{"UI organization admin", w.orgAdminUI},
		{"operator", ""},
	} {
		for _, rq := range requests(newHook()) {
			if r := e.call(caller.tok, rq.method, rq.path, rq.body); r.status != rq.want {
				t.Errorf("%s: %s %s: %d %s, want %d", caller.name, rq.method, rq.path, r.status, r.body, rq.want)
			}
		}
	}
}

// refusedURLs lead to loopback, private, link-local and other restricted
// addresses.
var refusedURLs = []string{
	"http://127.0.0.1:8080/hook",
	"http://10.0.0.8/hook",
	"http://192.168.1.1/",
	"http://169.254.169.254/latest/meta-data/",
	"http://[::1]:8080/",
	"http://[fd00::1]/",
	"http://100.64.0.1/",
	"http://0.0.0.0/",
	"http://localhost:8080/hook", // a name resolving to loopback
}

// TestWebhookURLRefused: without webhook_allow_private, URLs leading to
// loopback, private or link-local addresses are refused, on creation and
// on change; with it, they are taken.
func TestWebhookURLRefused(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	org := "/orgs/" + w.org
	for _, u := range refusedURLs {
		for _, tok := range []string{"", w.orgAdmin} {
			r := e.call(tok, "POST", org+"/webhooks", map[string]any{"url": u, "events": []string{"*"}})
			if r.status != 400 || r.code != "invalid_request" || !strings.HasPrefix(r.field(t, "error", "message"), "url ") ||
				!strings.Contains(r.field(t, "error", "message"), "webhook_allow_private") {
				t.Errorf("%s: %d %s, want 400 naming url", u, r.status, r.body)
			}
		}
	}
	// A change to such a URL is refused as well; a public address is
	// taken (no connection is made when saving).
	id := e.must(e.call("", "POST", org+"/webhooks", map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"*"}}), 201).field(t, "id")
	if r := e.call("", "PATCH", org+"/webhooks/"+id, map[string]any{"url": "http://169.254.169.254/"}); r.status != 400 {
		t.Errorf("PATCH to the metadata address: %d %s", r.status, r.body)
	}
}

// TestWebhookURLAllowedPrivate: with webhook_allow_private, the URLs
// refused without it are taken.
func TestWebhookURLAllowedPrivate(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	for _, u := range refusedURLs {
		e.must(e.call(w.orgAdmin, "POST", "/orgs/"+w.org+"/webhooks", map[string]any{"url": u, "events": []string{"*"}}), 201)
	}
}

// runningApp returns what the loaded config's tokengate app runs.
func runningApp(t *testing.T) *tokengate.Running {
	t.Helper()
	app, err := caddy.ActiveContext().App("tokengate")
	if err != nil {
		t.Fatal(err)
	}
	r, err := app.(*tokengate.App).Running()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestWebhookDelivery: changes made through the API arrive at a receiver,
// signed, in audit order; a receiver answering 500 gets the event again
// within seconds and the deliveries log shows every attempt; deliveries
// go on across a config reload and a restart of the app without
// repeating what was acknowledged; the secret is in no log.
func TestWebhookDelivery(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	org := "/orgs/" + w.org
	rcv := webhooktest.Start(t)
	failures := 0
	rcv.Answer(func(n int, a webhooktest.Arrival) int {
		if a.Payload.Type == "account.delete" && failures < 2 {
			failures++
			return 500
		}
		return 204
	})
	created := e.must(e.call(w.orgAdmin, "POST", org+"/webhooks", map[string]any{"url": rcv.URL,
		"events": []string{"account.create", "account.delete", "webhook.create"}}), 201)
	rcv.SetSecret(created.field(t, "secret"))
	hook := created.field(t, "id")

	var want []string // targets, in audit order
	want = append(want, hook)
	account := func() string {
		id := e.must(e.call(w.orgAdmin, "POST", org+"/accounts", map[string]string{"name": "n"}), 201).field(t, "id")
		want = append(want, id)
		return id
	}
	a1 := account()
	account()
	e.must(e.call(w.orgAdmin, "DELETE", org+"/accounts/"+a1, nil), 204)
	want = append(want, a1)
	account()
	arrivedInOrder := func(n int) {
		t.Helper()
		webhooktest.WaitFor(t, fmt.Sprint(n, " events arrived"), 20*time.Second, func() bool {
			got, _ := webhooktest.FirstOf(rcv.Arrivals())
			return len(got) >= n
		})
		got, dups := webhooktest.FirstOf(rcv.Arrivals())
		var targets []string
		for _, a := range got {
			targets = append(targets, a.Payload.Data.Target)
		}
		if !slices.Equal(targets, want[:n]) || dups != 0 {
			t.Fatalf("arrived %v (%d repeated), want %v", targets, dups, want[:n])
		}
	}
	arrivedInOrder(len(want))

	var log struct {
		Deliveries []struct {
			EventID, Type, Status, Error string
			Attempt                      int
			HTTPStatus                   int `json:"http_status"`
		}
	}
	webhooktest.WaitFor(t, "the last delivery is logged", 10*time.Second, func() bool {
		e.must(e.call(w.orgAdmin, "GET", org+"/webhooks/"+hook+"/deliveries", nil), 200).json(t, &log)
		return len(log.Deliveries) == len(want)+2
	})
	var deleteAttempts []string
	for _, d := range slices.Backward(log.Deliveries) {
		if d.Type == "account.delete" {
			deleteAttempts = append(deleteAttempts, fmt.Sprintf("%d %s %d", d.Attempt, d.Status, d.HTTPStatus))
		}
	}
	if !slices.Equal(deleteAttempts, []string{"1 retrying 500", "2 retrying 500", "3 delivered 204"}) {
		t.Fatalf("attempts of the delete: %v", deleteAttempts)
	}

	// A reload (another cache setting): the same engine goes on.
	engine := runningApp(t).Webhooks
	reloaded := strings.Replace(privateCaddyfile, "webhook_allow_private\n", "webhook_allow_private\n\t\tcache_ttl 4m\n", 1)
	vars := map[string]string{"ADMIN": strings.TrimSuffix(strings.TrimPrefix(e.adminURL, "http://127.0.0.1:"), "/tokengate"),
		"ETCD": e.etcd.Endpoint(), "LOG": e.logFile, "PORT": strings.TrimPrefix(e.siteURL, "http://127.0.0.1:")}
	if err := caddy.Load(caddytest.Adapt(t, reloaded, vars), true); err != nil {
		t.Fatal(err)
	}
	if runningApp(t).Webhooks != engine {
		t.Error("a reload made a new webhook engine")
	}
	account()
	arrivedInOrder(len(want))

	// A restart of the app: the engine goes, a new one resumes from the
	// cursor in etcd.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if engine.Leading() {
		t.Fatal("the stopped app's engine still leads")
	}
	if err := caddy.Load(caddytest.Adapt(t, privateCaddyfile, vars), true); err != nil {
		t.Fatal(err)
	}
	e.syncCache()
	account()
	account()
	arrivedInOrder(len(want))
	if runningApp(t).Webhooks == engine {
		t.Error("the restarted app kept the old engine")
	}
}

// TestWebhookTokenEvents: a webhook for the leak response gets token.revoke
// of a reported token, with the user it belonged to.
func TestWebhookTokenEvents(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile)
	w := e.setup()
	rcv := webhooktest.Start(t)
	created := e.must(e.call("", "POST", "/orgs/"+w.org+"/webhooks", map[string]any{"url": rcv.URL, "events": []string{"token.revoke"}}), 201)
	rcv.SetSecret(created.field(t, "secret"))
	userID, secret := e.programmatic(w.org, map[string]any{"level": "account", "account": w.a1, "role": "viewer"})
	e.must(e.send("", "POST", e.adminURL+"/credentials/revoke", map[string]any{"credentials": []string{secret}}, "application/json"), 202)
	webhooktest.WaitFor(t, "the revocation arrived", 20*time.Second, func() bool { return len(rcv.Arrivals()) == 1 })
	d := rcv.Arrivals()[0].Payload.Data
	if d.Action != "token.revoke" || d.User != userID || d.Actor.Type != "reporter" || !strings.HasPrefix(d.Target, "tok-") {
		t.Fatalf("delivered %+v", d)
	}
}
