package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/tokengate/tokengate/admin"
	"github.com/tokengate/tokengate/internal/webhooktest"
)

// The OpenAPI document is checked with libopenapi and libopenapi-validator
// (OpenAPI 3.1, JSON Schema 2020-12): the document against the OpenAPI
// schema, its examples against their schemas, and live requests and
// answers against the operations they hit.

// validationOptions: formats (date-time, email) are asserted, not just
// annotations; strict mode refuses query parameters the document does not
// declare, as the API does.
func validationOptions() []config.Option {
	return []config.Option{config.WithFormatAssertions(), config.WithStrictMode()}
}

// openAPIModel builds the document's model, failing on any error.
func openAPIModel(t *testing.T, doc []byte) (libopenapi.Document, *v3.Document) {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("reading the OpenAPI document: %v", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		t.Fatalf("building the OpenAPI model: %v", err)
	}
	if m.Model.Version != "3.1.0" {
		t.Fatalf("openapi = %q", m.Model.Version)
	}
	return d, &m.Model
}

func openAPIValidator(t *testing.T, doc []byte, opts ...config.Option) validator.Validator {
	t.Helper()
	d, _ := openAPIModel(t, doc)
	v, errs := validator.NewValidator(d, opts...)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	return v
}

// mountDocument is the document as one mount serves it.
type mountDocument struct {
	validator validator.Validator
	model     *v3.Document
}

// mountOptions: requests must also match the document's server (scheme,
// host, port and path prefix), which proves the served server right.
func mountOptions() []config.Option {
	return append(validationOptions(), config.WithStrictServerMatching())
}

func newMountDocument(t *testing.T, doc []byte) mountDocument {
	t.Helper()
	_, model := openAPIModel(t, doc)
	return mountDocument{validator: openAPIValidator(t, doc, mountOptions()...), model: model}
}

// declaresContent reports whether the document gives the answer to req
// with that status a body.
func (d mountDocument) declaresContent(req *http.Request, status int) bool {
	item, _, _ := paths.FindPath(req, d.model, config.NewValidationOptions(mountOptions()...))
	if item == nil {
		return false
	}
	op := item.GetOperations().GetOrZero(strings.ToLower(req.Method))
	if op == nil {
		return false
	}
	res := op.Responses.Codes.GetOrZero(strconv.Itoa(status))
	return res != nil && res.Content.Len() > 0
}

func describe(errs []*valerrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    at %s: %s", se.FieldPath, se.Reason)
		}
	}
	return b.String()
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1.
func TestOpenAPIDocument(t *testing.T) {
	v := openAPIValidator(t, admin.OpenAPI(), validationOptions()...)
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("the document is not valid OpenAPI:%s", describe(errs))
	}
}

// TestOpenAPIRoutes: every route the router serves is in the document, and
// every operation of the document is a route.
func TestOpenAPIRoutes(t *testing.T) {
	_, model := openAPIModel(t, admin.OpenAPI())
	var documented, served []string
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, rt := range admin.New(nil, nil, nil).Routes() {
		served = append(served, rt.Method+" "+rt.Pattern)
	}
	// Both mounts answer health themselves, before the API and its store.
	served = append(served, "GET /health")
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("document and router differ:\n documented %v\n served     %v", documented, served)
	}
}

// TestOpenAPIExamples: every example in the document validates against the
// schema beside it.
func TestOpenAPIExamples(t *testing.T) {
	_, model := openAPIModel(t, admin.OpenAPI())
	schemas := schema_validation.NewSchemaValidator(validationOptions()...)
	checked := 0
	check := func(where string, content *v3.MediaType) {
		t.Helper()
		if content.Schema == nil {
			t.Fatalf("%s: no schema", where)
		}
		schema := content.Schema.Schema()
		examples := map[string]*yaml.Node{}
		if content.Example != nil {
			examples["example"] = content.Example
		}
		for name, ex := range content.Examples.FromOldest() {
			examples["example "+name] = ex.Value
		}
		for name, node := range examples {
			var value any
			if err := node.Decode(&value); err != nil {
				t.Fatalf("%s %s: %v", where, name, err)
			}
			if ok, errs := schemas.ValidateSchemaObject(schema, value); !ok {
				t.Errorf("%s %s does not match its schema:%s", where, name, describe(errs))
			}
			checked++
		}
	}
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			where := strings.ToUpper(method) + " " + path
			if op.RequestBody != nil {
				for mediaType, content := range op.RequestBody.Content.FromOldest() {
					if mediaType != "application/json" {
						t.Errorf("%s request: %s is not application/json", where, mediaType)
					}
					check(where+" request", content)
				}
			}
			for status, res := range op.Responses.Codes.FromOldest() {
				for mediaType, content := range res.Content.FromOldest() {
					if mediaType != "application/json" {
						t.Errorf("%s %s: %s is not application/json", where, status, mediaType)
					}
					check(where+" "+status, content)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d examples checked", checked)
	}
}

// exchange is one request and its answer, as sent and received.
type exchange struct {
	method, url string
	reqHeader   http.Header
	reqBody     []byte
	status      int
	header      http.Header
	body        []byte
}

func (x exchange) request() *http.Request {
	req, err := http.NewRequest(x.method, x.url, bytes.NewReader(x.reqBody))
	if err != nil {
		panic(err)
	}
	req.Header = x.reqHeader.Clone()
	return req
}

func (x exchange) response() *http.Response {
	return &http.Response{StatusCode: x.status, Header: x.header.Clone(), Body: io.NopCloser(bytes.NewReader(x.body))}
}

// recorder is an http.RoundTripper that keeps every exchange.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchange{method: req.Method, url: req.URL.String(), reqHeader: req.Header.Clone()}
	if req.Body != nil {
		var err error
		if x.reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(x.reqBody))
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	x.body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(x.body))
	x.status, x.header = res.StatusCode, res.Header.Clone()
	rec.mu.Lock()
	rec.exchanges = append(rec.exchanges, x)
	rec.mu.Unlock()
	return res, nil
}

// recordExchanges makes http.DefaultClient, which env's helpers use, keep
// every exchange until the test ends.
func recordExchanges(t *testing.T) *recorder {
	rec := &recorder{}
	saved := http.DefaultClient
	http.DefaultClient = &http.Client{Transport: rec}
	t.Cleanup(func() { http.DefaultClient = saved })
	return rec
}

// servedDocument fetches openapi.json from a mount, checks that it is the
// stored document but for its one server, the mount's API, and returns it.
func servedDocument(t *testing.T, mount string) []byte {
	t.Helper()
	res, err := http.Get(mount + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s/openapi.json: %d %s", mount, res.StatusCode, res.Header.Get("Content-Type"))
	}
	var served, stored map[string]any
	if err := json.Unmarshal(body, &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(admin.OpenAPI(), &stored); err != nil {
		t.Fatal(err)
	}
	servers, _ := served["servers"].([]any)
	server, _ := servers[0].(map[string]any)
	if len(servers) != 1 || server["url"] != mount {
		t.Fatalf("%s/openapi.json: servers %v, want the one url %s", mount, served["servers"], mount)
	}
	delete(served, "servers")
	delete(stored, "servers")
	if !reflect.DeepEqual(served, stored) {
		t.Fatalf("%s/openapi.json differs from the stored document beyond its servers", mount)
	}
	return body
}

// TestOpenAPIMatchesAnswers: every request of a run through all routes, on
// both mounts and with refusals, and every answer, errors included,
// validates against the document as that mount serves it; the requests
// the API refuses as malformed (400, 405, 413) are the ones the document
// refuses too.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	e := startEnvWith(t, privateCaddyfile) // webhooks may reach the test's receiver
	w := e.setup()
	org := "/orgs/" + w.org
	siteMount := e.siteURL + "/admin"
	documents := map[string]mountDocument{
		e.adminURL: newMountDocument(t, servedDocument(t, e.adminURL)),
		siteMount:  newMountDocument(t, servedDocument(t, siteMount)),
	}
	rec := recordExchanges(t)

	// A run through every route, on both mounts, with refusals.
	for _, tok := range []string{"", w.orgAdmin} {
		act := e.must(e.call(tok, "POST", org+"/accounts", map[string]string{"name": "n"}), 201).field(t, "id")
		e.call(tok, "GET", "/orgs", nil)
		e.call(tok, "GET", org, nil)
		e.call(tok, "GET", org+"/accounts", nil)
		e.call(tok, "GET", org+"/accounts/"+act, nil)
		pol := e.must(e.call(tok, "POST", org+"/policies", map[string]any{"name": "p", "account": act, "statements": []map[string]any{
			{"effect": "allow", "methods": []string{"GET"}, "paths": []string{"/api/*"}}}}), 201).field(t, "id")
		e.call(tok, "GET", org+"/policies", nil)
		e.call(tok, "GET", org+"/policies/"+pol, nil)
		e.call(tok, "PUT", org+"/policies/"+pol, map[string]any{"name": "q", "account": act, "statements": []map[string]any{
			{"effect": "deny", "methods": []string{"*"}, "paths": []string{"/api/x"}}}})
		u := e.must(e.call(tok, "POST", org+"/users", map[string]any{"type": "programmatic", "level": "account", "account": act,
			"role": "policy", "policies": []string{pol}, "name": "n", "rate_limit": map[string]any{"requests": 100, "window": "120s"}}), 201).field(t, "user", "id")
		e.call(tok, "POST", org+"/users", map[string]any{"type": "ui", "level": "organization", "accounts": []string{act},
			"role": "viewer", "name": "Ana", "email": "ana@example.com"})
		e.call(tok, "GET", org+"/users?limit=2", nil)
		e.call(tok, "GET", org+"/users?type=ui&account="+act, nil)
		e.call(tok, "GET", org+"/users/"+u, nil)
		e.call(tok, "PATCH", org+"/users/"+u, map[string]any{"disabled": true, "allowed_cidrs": []string{"10.0.0.0/8", "2001:db8::/32"}})
		e.call(tok, "PATCH", org+"/users/"+u, map[string]any{"rate_limit": map[string]any{"requests": 0, "window": "1m"}}) // 400
		e.call(tok, "PATCH", org+"/users/"+u, map[string]any{"rate_limit": map[string]any{"requests": 1, "window": "1d"}}) // 400
		e.call(tok, "PATCH", org+"/users/"+u, map[string]any{"rate_limit": nil})
		tk := e.must(e.call(tok, "POST", org+"/users/"+u+"/tokens", map[string]any{"expires_in": "1h"}), 201).field(t, "id")
		e.call(tok, "GET", org+"/users/"+u+"/tokens", nil)
		e.call(tok, "DELETE", org+"/users/"+u+"/tokens/"+tk, nil)
		// A user with requests: its token's last client, its usage and
		// advice, the organization's usage.
		made := e.must(e.call(tok, "POST", org+"/users", map[string]any{"type": "programmatic", "level": "account", "account": act,
			"role": "editor", "name": "reader"}), 201)
		v := made.field(t, "user", "id")
		e.syncCache()
		e.gateway(made.field(t, "token", "secret"), "/api/x")
		e.flushUse()
		e.flushRequests()
		e.call(tok, "GET", org+"/users/"+v+"/tokens", nil)
		e.call(tok, "GET", org+"/users/"+v+"/usage", nil)
		e.call(tok, "GET", org+"/users/"+v+"/usage?from=yesterday", nil) // 400
		e.call(tok, "GET", org+"/users/"+v+"/advice?days=7", nil)
		e.call(tok, "GET", org+"/users/"+v+"/advice?days=99", nil) // 400
		e.call(tok, "GET", org+"/usage", nil)
		e.call(tok, "PATCH", org+"/users/"+v, map[string]any{"proposed": map[string]any{"role": "viewer"}})
		e.call(tok, "PATCH", org+"/users/"+v, map[string]any{"proposed": map[string]any{"role": "boss"}}) // 400
		e.call(tok, "GET", org+"/users/"+v, nil)
		e.call(tok, "PATCH", org+"/users/"+v, map[string]any{"proposed": nil})
		e.call(tok, "PATCH", org, map[string]any{"max_token_lifetime": "90d", "dormant_after": "14d"})
		e.call(tok, "PATCH", org, map[string]any{"max_token_lifetime": "90"}) // 400
		e.call(tok, "PATCH", org, map[string]any{"max_token_lifetime": "", "dormant_after": ""})
		e.call(tok, "GET", org+"/audit?limit=3", nil)
		rcv := webhooktest.Start(t)
		rcv.Answer(func(n int, _ webhooktest.Arrival) int { return []int{503, 204}[n%2] })
		created := e.must(e.call(tok, "POST", org+"/webhooks", map[string]any{"url": rcv.URL, "events": []string{"*"}, "description": "d"}), 201)
		rcv.SetSecret(created.field(t, "secret"))
		wh := created.field(t, "id")
		e.call(tok, "GET", org+"/webhooks", nil)
		e.call(tok, "GET", org+"/webhooks/"+wh, nil)
		e.call(tok, "PATCH", org+"/webhooks/"+wh, map[string]any{"events": []string{"token.revoke", "webhook.update"}, "disabled": false})
		webhooktest.WaitFor(t, "deliveries are logged", 20*time.Second, func() bool {
			return strings.Contains(string(e.call(tok, "GET", org+"/webhooks/"+wh+"/deliveries?limit=5", nil).body), `"delivered"`)
		})
		rotated := e.must(e.call(tok, "POST", org+"/webhooks/"+wh+"/rotate-secret", map[string]any{"overlap": "24h"}), 200)
		rcv.SetSecret(rotated.field(t, "secret"))
		e.call(tok, "GET", org+"/webhooks/"+wh, nil)                                                             // previous_secret_expires_at
		e.call(tok, "POST", org+"/webhooks/"+wh+"/rotate-secret", map[string]any{"overlap": 24})                 // 400
		e.call(tok, "POST", org+"/webhooks", map[string]any{"url": "ftp://x.example/", "events": []string{"*"}}) // 400
		e.call(tok, "PATCH", org+"/webhooks/"+wh, map[string]any{"secret": "whsec_x"})                           // 400
		e.call(tok, "GET", org+"/webhooks/"+wh+"/deliveries?limit=0", nil)                                       // 400
		e.call(tok, "DELETE", org+"/webhooks/"+wh, nil)
		e.call(tok, "GET", org+"/webhooks/"+wh, nil)     // 404
		e.call(tok, "DELETE", org+"/accounts/"+act, nil) // 409
		e.call(tok, "DELETE", org+"/users/"+u, nil)
		e.call(tok, "DELETE", org+"/policies/"+pol, nil)
		e.call(tok, "DELETE", org+"/accounts/"+act, nil)
		e.call(tok, "GET", org+"/users/u-000000000000", nil)                              // 404
		e.call(tok, "POST", org+"/users", map[string]any{"type": "programmatic", "x": 1}) // 400
		e.call(tok, "GET", org+"/accounts?color=red", nil)                                // 400
		e.call(tok, "GET", org+"/audit?limit=0", nil)                                     // 400
		e.call(tok, "PUT", org, nil)                                                      // 405
		e.call(tok, "POST", org+"/accounts", fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", admin.MaxBody)))
	}
	e.call("", "POST", "/orgs", map[string]string{"name": "Initech"})
	e.call(w.orgAdmin, "POST", "/orgs", map[string]string{"name": "Initech"}) // 403
	e.call(w.viewerA1, "GET", org, nil)                                       // 403
	e.send("tgp_x", "GET", siteMount+org, nil, "")                            // 401

	// The public report route, on both mounts, without a token: taken,
	// refused as malformed, and over report_limit (60/1h per client IP;
	// every request here comes from 127.0.0.1).
	for _, mount := range []string{e.adminURL, siteMount} {
		e.send("", "POST", mount+"/credentials/revoke", map[string]any{"credentials": []string{"tgp_x", e.unknownToken()}}, "application/json")
		e.send("", "POST", mount+"/credentials/revoke", map[string]any{"credentials": make([]string, admin.MaxReported+1)}, "application/json") // 400
	}
	for i := 0; i < 60; i++ {
		if e.send("", "POST", siteMount+"/credentials/revoke", map[string]any{"credentials": []string{}}, "application/json").status == 429 {
			break
		}
	}
	// 403 ip_forbidden: an admin outside its networks.
	_, remote := e.programmatic(w.org, map[string]any{"level": "organization", "role": "admin", "allowed_cidrs": []string{"192.0.2.0/24"}})
	if r := e.call(remote, "GET", org+"/users", nil); r.code != "ip_forbidden" {
		t.Errorf("an admin outside its networks: %d %s", r.status, r.body)
	}

	statuses := map[int]bool{}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, x := range rec.exchanges {
		mount := e.adminURL
		if strings.HasPrefix(x.url, siteMount+"/") {
			mount = siteMount
		} else if !strings.HasPrefix(x.url, e.adminURL+"/") {
			continue // not the API
		}
		d := documents[mount]
		statuses[x.status] = true
		name := fmt.Sprintf("%s %s (%d)", x.method, strings.TrimPrefix(x.url, mount), x.status)

		malformed := x.status == 400 || x.status == 405 || x.status == 413
		if ok, errs := d.validator.ValidateHttpRequestSync(x.request()); ok == malformed {
			if malformed {
				t.Errorf("%s: the API refused a request the document allows", name)
			} else {
				t.Errorf("%s: the document refuses a request the API took:%s", name, describe(errs))
			}
		}
		if x.status == 405 {
			if x.header.Get("Allow") == "" {
				t.Errorf("%s: no Allow header", name)
			}
			continue // no such operation to answer for
		}
		if ok, errs := d.validator.ValidateHttpResponse(x.request(), x.response()); !ok {
			t.Errorf("%s: the answer does not match the document:%s\n%s", name, describe(errs), x.body)
		}
		// The validator checks declared content; a body where none is
		// declared (204) is checked here.
		if len(x.body) > 0 && !d.declaresContent(x.request(), x.status) {
			t.Errorf("%s: a body the document does not describe: %s", name, x.body)
		}
	}
	for _, s := range []int{200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 429} {
		if !statuses[s] {
			t.Errorf("no answer with status %d was checked", s)
		}
	}
}
