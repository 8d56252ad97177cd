package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tokengate/tokengate/admin"
)

const docURL = "file:///openapi.json"

// openAPI is the document, parsed, with a schema compiler over it.
type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(admin.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(admin.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(docURL, res); err != nil {
		t.Fatal(err)
	}
	return &openAPI{doc: doc, compiler: c, compiled: map[string]*jsonschema.Schema{}}
}

// at resolves a JSON pointer in the document.
func (o *openAPI) at(t *testing.T, pointer string) any {
	t.Helper()
	var v any = o.doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %q", pointer, tok)
		}
		v, ok = m[tok]
		if !ok {
			t.Fatalf("%s: no %q", pointer, tok)
		}
	}
	return v
}

// deref follows a $ref (requestBodies, responses) to the object, and tells
// its pointer.
func (o *openAPI) deref(t *testing.T, pointer string) (map[string]any, string) {
	t.Helper()
	m, _ := o.at(t, pointer).(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		return o.deref(t, ref)
	}
	return m, pointer
}

func (o *openAPI) schema(t *testing.T, pointer string) *jsonschema.Schema {
	t.Helper()
	if s, ok := o.compiled[pointer]; ok {
		return s
	}
	s, err := o.compiler.Compile(docURL + pointer)
	if err != nil {
		t.Fatalf("compiling %s: %v", pointer, err)
	}
	o.compiled[pointer] = s
	return s
}

func (o *openAPI) validate(t *testing.T, pointer string, instance any) error {
	t.Helper()
	data, _ := json.Marshal(instance)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return o.schema(t, pointer).Validate(v)
}

func esc(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// TestOpenAPIRoutes: every route the router serves is in the document, and
// every operation of the document is a route.
func TestOpenAPIRoutes(t *testing.T) {
	o := loadOpenAPI(t)
	var documented, served []string
	for path, item := range o.doc["paths"].(map[string]any) {
		for _, m := range methods {
			if _, ok := item.(map[string]any)[m]; ok {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	for _, rt := range admin.New(nil, nil, nil).Routes() {
		served = append(served, rt.Method+" "+rt.Pattern)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("document and router differ:\n documented %v\n served     %v", documented, served)
	}
}

// TestOpenAPIExamples: every example in the document validates against the
// schema beside it.
func TestOpenAPIExamples(t *testing.T) {
	o := loadOpenAPI(t)
	checked := 0
	check := func(where string, media map[string]any, mediaPtr string) {
		if _, ok := media["schema"]; !ok {
			t.Fatalf("%s: no schema", where)
		}
		schemaPtr := mediaPtr + "/schema"
		if ex, ok := media["example"]; ok {
			if err := o.validate(t, schemaPtr, ex); err != nil {
				t.Errorf("%s example: %v", where, err)
			}
			checked++
		}
		if exs, ok := media["examples"].(map[string]any); ok {
			for name, ex := range exs {
				if err := o.validate(t, schemaPtr, ex.(map[string]any)["value"]); err != nil {
					t.Errorf("%s example %s: %v", where, name, err)
				}
				checked++
			}
		}
	}
	content := func(where string, obj map[string]any, ptr string) {
		if c, ok := obj["content"].(map[string]any); ok {
			media, ok := c["application/json"].(map[string]any)
			if !ok {
				t.Fatalf("%s: content is not application/json", where)
			}
			check(where, media, ptr+"/content/application~1json")
		}
	}
	for path, item := range o.doc["paths"].(map[string]any) {
		for _, m := range methods {
			op, ok := item.(map[string]any)[m].(map[string]any)
			if !ok {
				continue
			}
			opPtr := "#/paths/" + esc(path) + "/" + m
			if _, ok := op["requestBody"]; ok {
				body, ptr := o.deref(t, opPtr+"/requestBody")
				content(m+" "+path+" request", body, ptr)
			}
			for status := range op["responses"].(map[string]any) {
				res, ptr := o.deref(t, opPtr+"/responses/"+status)
				content(m+" "+path+" "+status, res, ptr)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d examples checked", checked)
	}
}

// TestOpenAPIMatchesAnswers: what the live API answers, successes and
// errors alike, validates against the document.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	o := loadOpenAPI(t)
	e := startEnv(t)
	w := e.setup()
	org := "/orgs/" + w.org

	// Both mounts serve the document, without a token.
	for _, u := range []string{e.adminURL + "/openapi.json", e.siteURL + "/admin/openapi.json"} {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(body, admin.OpenAPI()) {
			t.Fatalf("%s: %d, %d bytes", u, res.StatusCode, len(body))
		}
	}

	// A run through every route, on both mounts, with refusals.
	for _, tok := range []string{"", w.orgAdmin} {
		act := e.must(e.call(tok, "POST", org+"/accounts", map[string]string{"name": "n"}), 201).field(t, "id")
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
			"role": "policy", "policies": []string{pol}, "name": "n"}), 201).field(t, "user", "id")
		e.call(tok, "POST", org+"/users", map[string]any{"type": "ui", "level": "organization", "accounts": []string{act},
			"role": "viewer", "name": "Ana", "email": "ana@example.com"})
		e.call(tok, "GET", org+"/users?limit=2", nil)
		e.call(tok, "GET", org+"/users/"+u, nil)
		e.call(tok, "PATCH", org+"/users/"+u, map[string]any{"disabled": true})
		tk := e.must(e.call(tok, "POST", org+"/users/"+u+"/tokens", map[string]any{"expires_in": "1h"}), 201).field(t, "id")
		e.call(tok, "GET", org+"/users/"+u+"/tokens", nil)
		e.call(tok, "DELETE", org+"/users/"+u+"/tokens/"+tk, nil)
		e.call(tok, "GET", org+"/audit?limit=3", nil)
		e.call(tok, "DELETE", org+"/accounts/"+act, nil) // 409
		e.call(tok, "DELETE", org+"/users/"+u, nil)
		e.call(tok, "DELETE", org+"/policies/"+pol, nil)
		e.call(tok, "DELETE", org+"/accounts/"+act, nil)
		e.call(tok, "GET", org+"/users/u-000000000000", nil)                              // 404
		e.call(tok, "POST", org+"/users", map[string]any{"type": "programmatic", "x": 1}) // 400
		e.call(tok, "PUT", org, nil)                                                      // 405
		e.call(tok, "POST", org+"/accounts", fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", admin.MaxBody)))
	}
	e.call("", "POST", "/orgs", map[string]string{"name": "Initech"})
	e.call(w.orgAdmin, "POST", "/orgs", map[string]string{"name": "Initech"}) // 403
	e.call(w.viewerA1, "GET", org, nil)                                       // 403
	e.send("tgp_x", "GET", e.siteURL+"/admin"+org, nil, "")                   // 401

	paths := o.doc["paths"].(map[string]any)
	statuses := map[int]bool{}
	for _, a := range e.answers {
		pattern := matchPath(paths, a.path)
		if pattern == "" {
			if a.status != 404 {
				t.Errorf("%s %s: not in the document", a.method, a.path)
			}
			continue
		}
		statuses[a.status] = true
		op, ok := paths[pattern].(map[string]any)[strings.ToLower(a.method)].(map[string]any)
		if !ok {
			if a.status != 405 {
				t.Errorf("%s %s: method not in the document, answered %d", a.method, pattern, a.status)
			}
			continue
		}
		status := strconv.Itoa(a.status)
		if _, ok := op["responses"].(map[string]any)[status]; !ok {
			t.Errorf("%s %s answered %d, which the document does not list", a.method, pattern, a.status)
			continue
		}
		res, ptr := o.deref(t, "#/paths/"+esc(pattern)+"/"+strings.ToLower(a.method)+"/responses/"+status)
		if _, ok := res["content"]; !ok {
			if len(a.body) != 0 {
				t.Errorf("%s %s %d: a body the document does not describe", a.method, pattern, a.status)
			}
			continue
		}
		var body any
		if err := json.Unmarshal(a.body, &body); err != nil {
			t.Fatalf("%s %s: %v", a.method, a.path, err)
		}
		if err := o.validate(t, ptr+"/content/application~1json/schema", body); err != nil {
			t.Errorf("%s %s %d: answer does not match the document: %v\n%s", a.method, pattern, a.status, err, a.body)
		}
	}
	for _, s := range []int{200, 201, 204, 400, 401, 403, 404, 409, 413} {
		if !statuses[s] {
			t.Errorf("no answer with status %d was checked", s)
		}
	}
}

// matchPath finds the document's pattern for a concrete path.
func matchPath(paths map[string]any, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for pattern := range paths {
		want := strings.Split(strings.Trim(pattern, "/"), "/")
		if len(want) != len(segs) {
			continue
		}
		ok := true
		for i := range want {
			if !strings.HasPrefix(want[i], "{") && want[i] != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return pattern
		}
	}
	return ""
}
