package admin_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestListOrgs: GET /orgs lists every organization for the operator, and
// is refused to every caller through tokengate_admin.
func TestListOrgs(t *testing.T) {
	e := startEnv(t)

	t.Run("empty", func(t *testing.T) {
		r := e.must(e.call("", "GET", "/orgs", nil), 200)
		if string(r.body) != `{"orgs":[]}`+"\n" {
			t.Fatalf("empty list: %s", r.body)
		}
	})

	w := e.setup() // organizations acme and globex
	generated := e.must(e.call("", "POST", "/orgs", map[string]string{"name": "Initech"}), 201).field(t, "id")

	t.Run("operator lists in ID order", func(t *testing.T) {
		var list struct {
			Orgs []struct {
				ID, Name  string
				CreatedAt string                    `json:"created_at"`
				CreatedBy struct{ ID, Type string } `json:"created_by"`
			}
		}
		e.must(e.call("", "GET", "/orgs", nil), 200).json(t, &list)
		var ids []string
		for _, o := range list.Orgs {
			ids = append(ids, o.ID)
			if o.Name == "" || o.CreatedAt == "" || o.CreatedBy.ID != "operator" || o.CreatedBy.Type != "operator" {
				t.Errorf("org %+v", o)
			}
		}
		want := []string{w.org, w.other, generated}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("listed %v, want %v", ids, want)
		}
	})

	t.Run("unknown query parameter", func(t *testing.T) {
		if r := e.call("", "GET", "/orgs?limit=1", nil); r.status != 400 || r.code != "invalid_request" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	t.Run("tokengate_admin refuses everyone", func(t *testing.T) {
		for _, c := range []struct{ name, tok string }{
			{"organization admin", w.orgAdmin},
			{"UI organization admin", w.orgAdminUI},
			{"account admin", w.acctAdminA1},
			{"other org's admin", w.otherOrgAdmin},
			{"viewer", w.viewerA1},
		} {
			if r := e.call(c.tok, "GET", "/orgs", nil); r.status != 403 || r.code != "forbidden" {
				t.Errorf("%s: %d %s", c.name, r.status, r.body)
			}
		}
		if r := e.send("", "GET", e.siteURL+"/admin/orgs", nil, ""); r.status != 401 || r.code != "unauthorized" {
			t.Errorf("no token: %d %s", r.status, r.body)
		}
	})

	t.Run("methods", func(t *testing.T) {
		if r := e.call("", "DELETE", "/orgs", nil); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
}

// TestAccountIDsAcrossOrgs: an organization cannot create an account with
// an id another organization holds (the gateway would tag its users'
// requests with the other's X-Tokengate-Account-Id), whoever asks, also
// when several ask at once.
func TestAccountIDsAcrossOrgs(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	for _, c := range []struct{ name, tok string }{{"organization admin", w.orgAdmin}, {"operator", ""}} {
		r := e.call(c.tok, "POST", "/orgs/"+w.org+"/accounts", map[string]string{"id": w.g1, "name": "mine now"})
		if r.status != 409 || r.code != "conflict" {
			t.Fatalf("%s creating %s's account id %s: %d %s", c.name, w.other, w.g1, r.status, r.body)
		}
	}
	if r := e.call("", "GET", "/orgs/"+w.org+"/accounts/"+w.g1, nil); r.status != 404 {
		t.Fatalf("%s holds %s: %d %s", w.org, w.g1, r.status, r.body)
	}

	const n = 8
	for i := range n {
		e.must(e.call("", "POST", "/orgs", map[string]string{"id": fmt.Sprintf("race%d", i), "name": "r"}), 201)
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = e.call("", "POST", fmt.Sprintf("/orgs/race%d/accounts", i), map[string]string{"id": "act-00c0ffee", "name": "r"}).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if statuses[0] != 201 || statuses[1] != 409 || statuses[n-1] != 409 {
		t.Fatalf("concurrent creations of one id answered %v, want one 201 and the rest 409", statuses)
	}
}
