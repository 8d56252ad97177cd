package advice

import (
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/usage"
)

// TestNoPolicyFromRoutesNotExact: a drafted policy allows exactly the
// routes used; a route with a wildcard a client sent, or a method counted
// as OTHER, cannot be allowed exactly, so no policy is drafted.
func TestNoPolicyFromRoutesNotExact(t *testing.T) {
	u := &store.User{ID: "u-1", Org: "acme", Level: store.LevelAccount, Account: "act-1", Role: store.RoleEditor, Name: "bot"}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		route, method string
		drafted       bool
	}{{"/api/reports", "GET", true}, {"/api/*", "GET", false}, {"/api/reports", "OTHER", false}, {"/api/a\x00b", "GET", false}} {
		rep := usage.NewReport(at, at.Add(time.Hour))
		books := usage.NewBooks()
		books.Add([]usage.Counted{{Org: "acme", User: "u-1", Cells: map[usage.Cell]int64{
			{Hour: at.Unix() / 3600, Account: "act-1", Method: c.method, Route: c.route, Outcome: usage.Admitted}: 1}}})
		for _, r := range books.Changed() {
			if err := rep.Add(r.Day, r.Value); err != nil {
				t.Fatal(err)
			}
		}
		drafted := false
		for _, s := range For(u, nil, rep.Finish()).Suggestions {
			drafted = drafted || s.Kind == "policy"
		}
		if drafted != c.drafted {
			t.Errorf("%s %q: a policy drafted %v, want %v", c.method, c.route, drafted, c.drafted)
		}
	}
}
