package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/admin"
)

// TestEveryRouteHasACommand: the command line has no gaps — every route
// of the admin API is an action of some resource (the API's short path
// names read as the flags that fill them), and every action is a route
// (of the API, or one of the operator's on Caddy's admin endpoint).
func TestEveryRouteHasACommand(t *testing.T) {
	names := strings.NewReplacer("{act}", "{account}", "{pol}", "{policy}", "{tok}", "{token}", "{wh}", "{webhook}")
	var routes []string
	for _, rt := range admin.New(nil, nil, nil).Routes() {
		routes = append(routes, rt.Method+" "+names.Replace(rt.Pattern))
	}
	var actions []string
	for _, r := range resources {
		for _, a := range r.actions {
			if a.local == nil {
				actions = append(actions, a.method+" "+a.path)
			}
		}
	}
	for _, rt := range routes {
		if !slices.Contains(actions, rt) {
			t.Errorf("no command for %s", rt)
		}
	}
	for _, a := range actions {
		if !slices.Contains(routes, a) && !slices.Contains(admin.OperatorRoutes, a) {
			t.Errorf("a command for %s, which is no route", a)
		}
	}
}
