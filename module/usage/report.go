package usage

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report sums what one user's requests did in a window [From, To), from
// the day rollups of every gateway.
type Report struct {
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Requests int64            `json:"requests"`
	Outcomes map[string]int64 `json:"outcomes"`
	// Hours are the hours with requests, ascending.
	Hours []HourCounts `json:"hours"`
	// Routes are the counts by account, method, route, statement and
	// outcome, largest first.
	Routes []RouteCounts `json:"routes"`
	// WouldRefuse counts the admitted requests the user's proposed rights
	// (report-only) would have refused; WouldRefuseRoutes says which, the
	// outcome being the refusal's code. Neither is in the counts above.
	WouldRefuse       int64         `json:"would_refuse"`
	WouldRefuseRoutes []RouteCounts `json:"would_refuse_routes"`

	hours  map[int64]map[string]int64
	routes map[rowKey]int64
	would  map[rowKey]int64
}

// WouldRefusePrefix starts the outcome of a request admitted under the
// user's rights that its proposed rights would refuse: "would_refuse:"
// and the refusal's code.
const WouldRefusePrefix = "would_refuse:"

// HourCounts are one hour's requests by outcome.
type HourCounts struct {
	Hour     time.Time        `json:"hour"`
	Outcomes map[string]int64 `json:"outcomes"`
}

// RouteCounts are the requests of one account, method, route, statement
// and outcome.
type RouteCounts struct {
	Account   string `json:"account,omitempty"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Statement string `json:"statement,omitempty"`
	Outcome   string `json:"outcome"`
	Count     int64  `json:"count"`
}

// NewReport starts a report of the window [from, to), in whole hours.
func NewReport(from, to time.Time) *Report {
	return &Report{
		From: from.UTC().Truncate(time.Hour), To: to.UTC().Truncate(time.Hour),
		Outcomes: map[string]int64{}, hours: map[int64]map[string]int64{}, routes: map[rowKey]int64{}, would: map[rowKey]int64{},
	}
}

// Days are the UTC days the window touches, as rollup keys name them.
func (r *Report) Days() []string {
	var days []string
	for d := r.From.Truncate(24 * time.Hour); d.Before(r.To); d = d.Add(24 * time.Hour) {
		days = append(days, d.Format(DayLayout))
	}
	return days
}

// Add sums one gateway's rollup of day into the report, leaving out the
// hours outside the window.
func (r *Report) Add(day string, value []byte) error {
	start, err := time.Parse(DayLayout, day)
	if err != nil {
		return fmt.Errorf("rollup day %q: %v", day, err)
	}
	var d Day
	if err := json.Unmarshal(value, &d); err != nil {
		return fmt.Errorf("rollup of %s: %v", day, err)
	}
	for _, row := range d.Rows {
		key := rowKey{row.Account, row.Method, row.Route, row.Statement, row.Outcome}
		for _, hc := range row.Hours {
			at := start.Add(time.Duration(hc[0]) * time.Hour)
			if hc[0] < 0 || hc[0] > 23 || hc[1] <= 0 || at.Before(r.From) || !at.Before(r.To) {
				continue
			}
			n := hc[1]
			if code, ok := strings.CutPrefix(row.Outcome, WouldRefusePrefix); ok {
				r.WouldRefuse += n
				r.would[rowKey{row.Account, row.Method, row.Route, row.Statement, code}] += n
				continue
			}
			r.Requests += n
			r.Outcomes[row.Outcome] += n
			byOutcome := r.hours[at.Unix()]
			if byOutcome == nil {
				byOutcome = map[string]int64{}
				r.hours[at.Unix()] = byOutcome
			}
			byOutcome[row.Outcome] += n
			r.routes[key] += n
		}
	}
	return nil
}

// Finish orders the hours and routes; call it once, after the last Add.
func (r *Report) Finish() *Report {
	r.Hours = make([]HourCounts, 0, len(r.hours))
	for h, o := range r.hours {
		r.Hours = append(r.Hours, HourCounts{Hour: time.Unix(h, 0).UTC(), Outcomes: o})
	}
	sort.Slice(r.Hours, func(i, j int) bool { return r.Hours[i].Hour.Before(r.Hours[j].Hour) })
	r.Routes = routeList(r.routes)
	r.WouldRefuseRoutes = routeList(r.would)
	return r
}

// routeList orders counts largest first.
func routeList(counts map[rowKey]int64) []RouteCounts {
	out := make([]RouteCounts, 0, len(counts))
	for k, n := range counts {
		out = append(out, RouteCounts{Account: k.account, Method: k.method, Route: k.route,
			Statement: k.statement, Outcome: k.outcome, Count: n})
	}
	slices.SortFunc(out, func(a, b RouteCounts) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Method, b.Method),
			cmp.Compare(a.Route, b.Route), cmp.Compare(a.Statement, b.Statement), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out
}

// Refused is the number of requests refused in the window.
func (r *Report) Refused() int64 { return r.Requests - r.Outcomes[Admitted] }
