package advice

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/tokengate/module/policy"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/usage"
)

// Advice is what a user's rights and its use of them in a window say.
type Advice struct {
	UserID string    `json:"user_id"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Requests and Admitted count the user's requests through the gateway
	// in the window (the admin API's are not counted).
	Requests int64 `json:"requests"`
	Admitted int64 `json:"admitted"`
	// UsedMethods are the methods of the admitted requests.
	UsedMethods []string `json:"used_methods"`
	// UnusedAccounts are accounts an organization-level user reaches that
	// no admitted request was for.
	UnusedAccounts []string `json:"unused_accounts"`
	// UnusedStatements are the allow statements of a policy user's
	// policies that admitted nothing.
	UnusedStatements []StatementRef `json:"unused_statements"`
	// Suggestions are narrower rights, each a PATCH of the user.
	Suggestions []Suggestion `json:"suggestions"`
}

// StatementRef names one statement of a policy.
type StatementRef struct {
	Policy    string           `json:"policy"`
	Index     int              `json:"index"`
	Statement policy.Statement `json:"statement"`
}

// Suggestion is one narrower set of rights: the body of a PATCH of the
// user (after creating Policy, when there is one, and putting its ID in
// the patch's policies).
type Suggestion struct {
	Kind  string         `json:"kind"` // "role", "accounts", "policy" or "disable"
	Why   string         `json:"why"`
	Patch map[string]any `json:"patch"`
	// Policy is a policy to create first: it covers exactly the routes and
	// methods the user was admitted on. The patch names it NewPolicyID.
	Policy *PolicyDraft `json:"policy,omitempty"`
}

// PolicyDraft is the body of a POST …/policies.
type PolicyDraft struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Account     string             `json:"account,omitempty"`
	Statements  []policy.Statement `json:"statements"`
}

// NewPolicyID stands in a suggestion's patch for the ID of the policy it
// asks to create first.
const NewPolicyID = "{new_policy_id}"

var reads = []string{"GET", "HEAD", "OPTIONS"}

// For judges user u's rights by report, its requests in a window; policies
// are the user's policies (role policy).
func For(u *store.User, policies []store.Policy, report *usage.Report) Advice {
	a := Advice{UserID: u.ID, From: report.From, To: report.To, Requests: report.Requests,
		Admitted: report.Outcomes[usage.Admitted], UsedMethods: []string{}, UnusedAccounts: []string{},
		UnusedStatements: []StatementRef{}, Suggestions: []Suggestion{}}
	methods := map[string]bool{}
	accounts := map[string]bool{}
	statements := map[string]bool{}
	routes := map[string]map[string]bool{} // route → methods
	for _, rc := range report.Routes {
		if rc.Outcome != usage.Admitted {
			continue
		}
		methods[rc.Method] = true
		accounts[rc.Account] = true
		statements[rc.Statement] = true
		if routes[rc.Route] == nil {
			routes[rc.Route] = map[string]bool{}
		}
		routes[rc.Route][rc.Method] = true
	}
	for m := range methods {
		a.UsedMethods = append(a.UsedMethods, m)
	}
	sort.Strings(a.UsedMethods)

	if a.Admitted == 0 {
		if !u.Disabled {
			a.Suggestions = append(a.Suggestions, Suggestion{Kind: "disable",
				Why:   fmt.Sprintf("no request was admitted between %s and %s", day(a.From), day(a.To)),
				Patch: map[string]any{"disabled": true}})
		}
		return a
	}
	if u.Level == store.LevelOrganization && len(u.Accounts) > 0 {
		var used []string
		for _, act := range u.Accounts {
			if accounts[act] {
				used = append(used, act)
			} else {
				a.UnusedAccounts = append(a.UnusedAccounts, act)
			}
		}
		if len(a.UnusedAccounts) > 0 && len(used) > 0 {
			a.Suggestions = append(a.Suggestions, Suggestion{Kind: "accounts",
				Why:   fmt.Sprintf("%d of its %d accounts saw no admitted request", len(a.UnusedAccounts), len(u.Accounts)),
				Patch: map[string]any{"accounts": used}})
		}
	}
	for _, p := range policies {
		for i, st := range p.Statements {
			if st.Effect == "allow" && !statements[p.ID+"#"+strconv.Itoa(i)] {
				a.UnusedStatements = append(a.UnusedStatements, StatementRef{Policy: p.ID, Index: i, Statement: st})
			}
		}
	}
	onlyReads := true
	for m := range methods {
		onlyReads = onlyReads && slices.Contains(reads, m)
	}
	if u.Role == store.RoleEditor && onlyReads {
		a.Suggestions = append(a.Suggestions, Suggestion{Kind: "role",
			Why:   "every admitted request was a read (" + strings.Join(a.UsedMethods, ", ") + ")",
			Patch: map[string]any{"role": store.RoleViewer}})
	}
	// The policy role is for account-level users only.
	if u.Level == store.LevelAccount && u.Role != store.RoleAdmin && (u.Role != store.RolePolicy || len(a.UnusedStatements) > 0) {
		if s, ok := policySuggestion(u, routes); ok {
			a.Suggestions = append(a.Suggestions, s)
		}
	}
	return a
}

// policySuggestion drafts a policy allowing exactly the methods the user
// was admitted with on each route (the route and below it).
func policySuggestion(u *store.User, routes map[string]map[string]bool) (Suggestion, bool) {
	names := make([]string, 0, len(routes))
	for r, methods := range routes {
		// Routes are what clients sent: one with a wildcard, or that is
		// no path pattern, or a method counted as OTHER, cannot be
		// allowed exactly; nor can routes past the count (other).
		if r == usage.OtherRoute || strings.Contains(r, "*") || usage.Printable(r) != r || policy.ValidatePattern(r) != nil || methods["OTHER"] {
			return Suggestion{}, false
		}
		names = append(names, r)
	}
	sort.Strings(names)
	draft := &PolicyDraft{Name: "used by " + u.Name,
		Description: "the routes and methods " + u.ID + " was admitted on"}
	if u.Level == store.LevelAccount {
		draft.Account = u.Account
	}
	for _, r := range names {
		var ms []string
		for m := range routes[r] {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		paths := []string{r}
		if r != "/" {
			paths = append(paths, r+"/**")
		} else {
			paths = []string{"/**"}
		}
		draft.Statements = append(draft.Statements, policy.Statement{Effect: "allow", Methods: ms, Paths: paths})
	}
	return Suggestion{Kind: "policy",
		Why:    fmt.Sprintf("a policy of %d statements covers every admitted request", len(draft.Statements)),
		Patch:  map[string]any{"role": store.RolePolicy, "policies": []string{NewPolicyID}},
		Policy: draft}, true
}

func day(t time.Time) string { return t.UTC().Format(usage.DayLayout) }
