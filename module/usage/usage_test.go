package usage

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var at = time.Date(2026, 12, 5, 13, 30, 0, 0, time.UTC)

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/clusters/7/nodes": "/v1/clusters",
		"/v1/clusters":         "/v1/clusters",
		"/v1":                  "/v1",
		"/":                    "/",
		"":                     "/",
		"x":                    "/",
		"//a/b":                "//a",
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
	long := "/" + string(make([]byte, 300))
	if got := Route(long); len(got) != maxRouteLen {
		t.Errorf("a long route is %d bytes", len(got))
	}
	if Method("BREW") != "OTHER" || Method("PATCH") != "PATCH" {
		t.Error("methods are not labelled as documented")
	}
}

// TestCountHarvestReport: counts harvested into the books, encoded as the
// store keeps them, sum in a report as they were made, by hour, route and
// outcome; two gateways' rollups of one day add up.
func TestCountHarvestReport(t *testing.T) {
	gw := [2]*Counter{NewCounter(), NewCounter()}
	cell := Cell{Account: "acct-1", Method: "GET", Route: "/v1/things", Outcome: Admitted}
	for i := 0; i < 5; i++ {
		gw[0].Count("acme", "u-1", at, cell)
	}
	gw[1].Count("acme", "u-1", at.Add(time.Hour), cell)
	refused := Cell{Method: "DELETE", Route: "/v1/things", Outcome: "role_forbidden"}
	gw[1].Count("acme", "u-1", at.Add(time.Hour), refused)
	gw[1].Count("acme", "u-2", at, cell)

	rep := NewReport(at.Add(-2*time.Hour), at.Add(3*time.Hour))
	for _, c := range gw {
		books := NewBooks()
		books.Add(c.Harvest(at.Add(time.Hour)))
		for _, r := range books.Changed() {
			if r.User != "u-1" {
				continue
			}
			if err := rep.Add(r.Day, r.Value); err != nil {
				t.Fatal(err)
			}
		}
		for _, again := range c.Harvest(at.Add(time.Hour)) {
			if len(again.Cells) != 0 {
				t.Error("a second harvest took the same counts again")
			}
		}
	}
	rep.Finish()
	if rep.Requests != 7 || rep.Outcomes[Admitted] != 6 || rep.Refused() != 1 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Hours) != 2 || rep.Hours[0].Outcomes[Admitted] != 5 || rep.Hours[1].Outcomes["role_forbidden"] != 1 {
		t.Fatalf("hours %+v", rep.Hours)
	}
	if rep.Routes[0] != (RouteCounts{Account: "acct-1", Method: "GET", Route: "/v1/things", Outcome: Admitted, Count: 6}) {
		t.Fatalf("routes %+v", rep.Routes)
	}
	// Outside the window: nothing.
	late := NewReport(at.Add(5*time.Hour), at.Add(6*time.Hour))
	books := NewBooks()
	books.Add([]Counted{{Org: "acme", User: "u-1", Cells: map[Cell]int64{{Hour: at.Unix() / 3600, Method: "GET", Route: "/", Outcome: Admitted}: 3}}})
	for _, r := range books.Changed() {
		_ = late.Add(r.Day, r.Value)
	}
	if late.Finish().Requests != 0 {
		t.Error("a report counted requests outside its window")
	}
}

// TestCellsPerUserBounded: a user sending ever new paths grows its counts
// to MaxCellsPerUser, then counts under OtherRoute; nothing is lost.
func TestCellsPerUserBounded(t *testing.T) {
	c := NewCounter()
	for i := 0; i < 3*MaxCellsPerUser; i++ {
		c.Count("acme", "u-1", at, Cell{Method: "GET", Route: Route(fmt.Sprintf("/r%d/x", i)), Outcome: Admitted})
	}
	got := c.Harvest(at)
	if len(got) != 1 || len(got[0].Cells) != MaxCellsPerUser+1 {
		t.Fatalf("%d cells", len(got[0].Cells))
	}
	var total, other int64
	for cell, n := range got[0].Cells {
		total += n
		if cell.Route == OtherRoute {
			other = n
		}
	}
	if total != 3*MaxCellsPerUser || other != 2*MaxCellsPerUser {
		t.Fatalf("total %d, under %s %d", total, OtherRoute, other)
	}
}

// TestDayRowsBounded: a user sending new paths every minute of a day
// keeps at most MaxCellsPerUser rows (and OtherRoute) in a day's books.
func TestDayRowsBounded(t *testing.T) {
	b := NewBooks()
	for minute := 0; minute < 10; minute++ {
		cells := map[Cell]int64{}
		for i := 0; i < MaxCellsPerUser; i++ {
			cells[Cell{Hour: at.Unix() / 3600, Method: "GET", Route: fmt.Sprintf("/m%d/r%d", minute, i), Outcome: Admitted}] = 1
		}
		b.Add([]Counted{{Org: "acme", User: "u-1", Cells: cells}})
	}
	var d Day
	changed := b.Changed()
	if err := json.Unmarshal(changed[0].Value, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Rows) != MaxCellsPerUser+1 {
		t.Fatalf("%d rows in a day", len(d.Rows))
	}
	rep := NewReport(at.Add(-time.Hour), at.Add(time.Hour))
	if err := rep.Add(changed[0].Day, changed[0].Value); err != nil {
		t.Fatal(err)
	}
	if rep.Finish().Requests != 10*MaxCellsPerUser {
		t.Fatalf("%d requests kept of %d", rep.Requests, 10*MaxCellsPerUser)
	}
}

// TestCountAllocatesNothing: once a cell exists, counting allocates nothing.
func TestCountAllocatesNothing(t *testing.T) {
	c := NewCounter()
	path := "/v1/things/42"
	cell := Cell{Account: "acct-1", Method: Method("GET"), Route: Route(path), Outcome: Admitted}
	c.Count("acme", "u-1", at, cell)
	if n := testing.AllocsPerRun(1000, func() { c.Count("acme", "u-1", at, cell) }); n != 0 {
		t.Fatalf("%v allocations a count", n)
	}
}

// TestBooksForgetPastDays: a day's books are dropped once written and over.
func TestBooksForgetPastDays(t *testing.T) {
	b := NewBooks()
	b.Add([]Counted{{Org: "acme", User: "u-1", Cells: map[Cell]int64{{Hour: at.Unix() / 3600, Method: "GET", Route: "/", Outcome: Admitted}: 1}}})
	changed := b.Changed()
	b.Written(nil, at.Add(48*time.Hour))
	if b.Len() != 1 {
		t.Fatal("unwritten books were dropped")
	}
	b.Written(changed, at.Add(48*time.Hour))
	if b.Len() != 0 || len(b.Changed()) != 0 {
		t.Fatal("written books of a past day were kept")
	}
}

func BenchmarkCount(b *testing.B) {
	c := NewCounter()
	cell := Cell{Account: "acct-1", Method: "GET", Route: "/v1/things", Outcome: Admitted}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Count("acme", "u-1", at, cell)
		}
	})
}

// BenchmarkRollupBytes reports what one user's day costs in etcd, key and
// value, for one gateway: a user busy every hour of the day on a few
// routes, one on the most routes a gateway keeps for it, and one that
// called once.
func BenchmarkRollupBytes(b *testing.B) {
	const key = len("/tokengate/_usage/2026-12-05/acme/u-0123456789ab/0123456789ab")
	for _, c := range []struct {
		name          string
		routes, hours int
		refusalsToo   bool
	}{
		{"typical: 3 routes, 24 hours", 3, 24, false},
		{"typical with refusals", 3, 24, true},
		{"once", 1, 1, false},
		{"worst: 256 cells, 24 hours", MaxCellsPerUser, 24, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			var size int
			for i := 0; i < b.N; i++ {
				books := NewBooks()
				cells := map[Cell]int64{}
				for h := 0; h < c.hours; h++ {
					for r := 0; r < c.routes; r++ {
						cells[Cell{Hour: at.Unix()/3600 - 13 + int64(h), Account: "acct-0123456789ab", Method: "GET",
							Route: fmt.Sprintf("/v1/route%d", r), Outcome: Admitted}] = 120
						if c.refusalsToo {
							cells[Cell{Hour: at.Unix()/3600 - 13 + int64(h), Method: "DELETE",
								Route: fmt.Sprintf("/v1/route%d", r), Outcome: "role_forbidden"}] = 2
						}
					}
				}
				books.Add([]Counted{{Org: "acme", User: "u-0123456789ab", Cells: cells}})
				size = 0
				for _, r := range books.Changed() {
					size += key + len(r.Value)
				}
			}
			b.ReportMetric(float64(size), "bytes/user-day")
		})
	}
}

// TestRoutesKeptPrintable: what a client puts in a path reaches admins'
// terminals and pages only as printable text.
func TestRoutesKeptPrintable(t *testing.T) {
	c := NewCounter()
	for _, p := range []string{"/api/\x1b]0;pwned\x07/x", "/api/a\r\nforged line/x", "/api/\u202egnp.exe/x", "/api/\xff/x"} {
		c.Count("acme", "u-1", at, Cell{Method: "GET", Route: Route(p), Outcome: Admitted})
		c.Count("acme", "u-1", at, Cell{Method: "GET", Route: Route(p), Outcome: Admitted})
	}
	got := c.Harvest(at)
	for cell, n := range got[0].Cells {
		if cell.Route != Printable(cell.Route) || strings.ContainsAny(cell.Route, "\x1b\x07\r\n\u202e") || n != 2 {
			t.Errorf("route %q counted %d", cell.Route, n)
		}
	}
	if Printable("deploy-bot/1.2 (linux)") != "deploy-bot/1.2 (linux)" {
		t.Error("printable text was changed")
	}
}

// TestHarvestLosesNoCount: counts made while harvests forget idle cells
// and users (an hour ago's, as at the turn of an hour) are all harvested.
func TestHarvestLosesNoCount(t *testing.T) {
	c := NewCounter()
	const workers, each = 4, 20000
	done := make(chan struct{})
	var harvested int64
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			for _, got := range c.Harvest(at.Add(2 * time.Hour)) {
				for _, n := range got.Cells {
					harvested += n
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				c.Count("acme", fmt.Sprintf("u-%d", i%3), at, Cell{Method: "GET", Route: "/r", Outcome: Admitted})
			}
		})
	}
	wg.Wait()
	<-done
	for _, got := range c.Harvest(at.Add(2 * time.Hour)) {
		for _, n := range got.Cells {
			harvested += n
		}
	}
	if harvested != workers*each {
		t.Fatalf("harvested %d of %d counts", harvested, workers*each)
	}
}
