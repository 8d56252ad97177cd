package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokengate/tokengate/module/advice"
	"github.com/tokengate/tokengate/module/usage"
)

// The tables of `user usage`, `user advice` and `org usage`: their answers
// are reports, not lists of plain objects, so printTable cannot show them.

// userUsageAnswer is GET …/users/{user}/usage: the report the API writes.
type userUsageAnswer struct {
	UserID string `json:"user_id"`
	usage.Report
}

// printUserUsage prints a user's usage: what window it is, then one line
// per account, method, route, statement and outcome, largest first, then
// the totals by outcome and in all.
func printUserUsage(w io.Writer, body []byte) error {
	var u userUsageAnswer
	if err := json.Unmarshal(body, &u); err != nil {
		return fmt.Errorf("the answer is not a usage report: %v", err)
	}
	fmt.Fprintf(w, "%s from %s to %s: %d %s\n", u.UserID, stamp(u.From), stamp(u.To), u.Requests, plural(int(u.Requests), "request", "requests"))
	statements := false
	for _, r := range u.Routes {
		statements = statements || r.Statement != ""
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) {
		if !statements {
			cells = append(cells[:3], cells[4:]...)
		}
		for i, c := range cells {
			if c == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("METHOD", "ROUTE", "ACCOUNT", "STATEMENT", "OUTCOME", "COUNT")
	for _, r := range u.Routes {
		row(r.Method, r.Route, r.Account, r.Statement, r.Outcome, fmt.Sprint(r.Count))
	}
	for _, o := range byCount(u.Outcomes) {
		row("TOTAL", "", "", "", o, fmt.Sprint(u.Outcomes[o]))
	}
	row("TOTAL", "", "", "", "all", fmt.Sprint(u.Requests))
	return tw.Flush()
}

// printOrgUsage prints an organization's usage: one line per user,
// busiest first, its requests, how many were refused and its outcomes.
func printOrgUsage(w io.Writer, body []byte) error {
	var o struct {
		From  time.Time `json:"from"`
		To    time.Time `json:"to"`
		Users []struct {
			UserID   string           `json:"user_id"`
			Requests int64            `json:"requests"`
			Refused  int64            `json:"refused"`
			Outcomes map[string]int64 `json:"outcomes"`
		} `json:"users"`
	}
	if err := json.Unmarshal(body, &o); err != nil {
		return fmt.Errorf("the answer is not a usage report: %v", err)
	}
	var requests, refused int64
	for _, u := range o.Users {
		requests += u.Requests
		refused += u.Refused
	}
	fmt.Fprintf(w, "from %s to %s: %d %s with requests\n", stamp(o.From), stamp(o.To), len(o.Users), plural(len(o.Users), "user", "users"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tREQUESTS\tREFUSED\tOUTCOMES")
	for _, u := range o.Users {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", u.UserID, u.Requests, u.Refused, outcomesText(u.Outcomes))
	}
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t-\n", requests, refused)
	return tw.Flush()
}

// printAdvice prints a user's advice: its window and requests, the rights
// it did not use, and each suggestion with the body of the user update
// that follows it (and the policy to create first, for kind policy).
func printAdvice(w io.Writer, body []byte) error {
	var a advice.Advice
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("the answer is not advice: %v", err)
	}
	methods := strings.Join(a.UsedMethods, ",")
	if methods == "" {
		methods = "none"
	}
	fmt.Fprintf(w, "%s from %s to %s: %d %s, %d admitted; methods used: %s\n", a.UserID, stamp(a.From), stamp(a.To),
		a.Requests, plural(int(a.Requests), "request", "requests"), a.Admitted, methods)

	fmt.Fprintln(w)
	if len(a.UnusedAccounts)+len(a.UnusedStatements) == 0 {
		fmt.Fprintln(w, "No unused accounts or policy statements.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "UNUSED\tID\tSTATEMENT")
		for _, act := range a.UnusedAccounts {
			fmt.Fprintf(tw, "account\t%s\t-\n", act)
		}
		for _, s := range a.UnusedStatements {
			fmt.Fprintf(tw, "statement\t%s#%d\t%s %s %s\n", s.Policy, s.Index, s.Statement.Effect,
				strings.Join(s.Statement.Methods, ","), strings.Join(s.Statement.Paths, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(a.Suggestions) == 0 {
		fmt.Fprintln(w, "No suggestions.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tWHY\tPATCH")
	var drafts []string
	for _, s := range a.Suggestions {
		patch, _ := json.Marshal(s.Patch)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Kind, s.Why, patch)
		if s.Policy != nil {
			draft, _ := json.Marshal(s.Policy)
			drafts = append(drafts, string(draft))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range drafts {
		fmt.Fprintf(w, "\nThe policy suggestion's policy, to create first (policy create --org … --file FILE), "+
			"its id then replacing {new_policy_id} in the patch:\n%s\n", d)
	}
	return nil
}

// stamp is a report's time as people read it, in UTC.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

// byCount orders the outcomes of counts largest first, then by name.
func byCount(counts map[string]int64) []string {
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

// outcomesText is counts by outcome on one line: admitted=10,role_forbidden=2.
func outcomesText(counts map[string]int64) string {
	var parts []string
	for _, o := range byCount(counts) {
		parts = append(parts, fmt.Sprintf("%s=%d", o, counts[o]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
