package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestBriefRun runs the whole tool for one short round per front end and
// checks the table's shape and the invariants that make its figures mean
// something.
func TestBriefRun(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the run keeps etcd and Caddy's storage
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := options{
		Duration:    200 * time.Millisecond,
		Rounds:      1,
		Connections: 2,
		Users:       20,
		OtherUsers:  20,
		BcryptCost:  bcrypt.MinCost, // the run hashes once; cost 14 would dominate it
		Fronts:      frontKeys,
	}
	var log bytes.Buffer
	rep, err := run(ctx, opts, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var table bytes.Buffer
	writeTable(&table, rep)
	t.Logf("\n%s", table.String())

	checkTable(t, table.String())
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check failed: %s", c.What)
		}
	}
	for _, want := range []string{
		"(b) answers 200 for a valid token, the user's ID upstream",
		"(c) answers 200 for a valid token, the user's ID upstream",
		"(d) answers 200 for valid credentials",
		"(b) cache warm",
		"(h) answers 200 for a valid token, the user's ID upstream",
		"(h) the upstream gets exactly the identity headers X-Tokengate-User-Id X-Tokengate-User-Type",
		"(b) the upstream gets exactly the identity headers X-Tokengate-Account-Id",
		"(i) answers 200 for a valid token, the user's ID upstream",
		"(i) cache warm",
		"(i)'s users carry rate_limit 1000000/1s",
		"the other users carry rate_limit 1000000/1s",
	} {
		if !hasCheck(rep, want) {
			t.Errorf("no passing check %q", want)
		}
	}
	checkInvariants(t, rep)
	checkJSON(t, rep)
	checkCleanedUp(t, rep, tmp)
}

// wantTargets is how many targets a run of every front end evaluates.
const wantTargets = 9

func checkTable(t *testing.T, table string) {
	t.Helper()
	lines := strings.Split(table, "\n")
	for _, prefix := range []string{"machine: ", "command: "} {
		if !hasLine(lines, prefix) {
			t.Errorf("no line starting %q", prefix)
		}
	}
	if !strings.Contains(table, "GOMAXPROCS") || !strings.Contains(table, "go1.") {
		t.Error("the machine line lacks GOMAXPROCS or the Go version")
	}
	cells := regexp.MustCompile(`\S+(?: \S+)*`) // cells are two or more spaces apart
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "front end") {
			header = i
		}
	}
	if header < 0 {
		t.Fatal("no table header")
	}
	if got := cells.FindAllString(lines[header], -1); strings.Join(got, "|") != strings.Join(tableHeader, "|") {
		t.Errorf("header cells %q, want %q", got, tableHeader)
	}
	for i, key := range frontKeys {
		row := cells.FindAllString(lines[header+1+i], -1)
		if len(row) != len(tableHeader) {
			t.Errorf("row %q has %d cells, want %d", lines[header+1+i], len(row), len(tableHeader))
			continue
		}
		if !strings.HasPrefix(row[0], "("+string(key)+") ") {
			t.Errorf("row %d is %q, want front end (%c)", i, row[0], key)
		}
		tokengateRow := strings.ContainsRune("befhi", key)
		if (row[5] == "-") == tokengateRow {
			t.Errorf("row (%c): lookups/1k is %q", key, row[5])
		}
	}
	for _, section := range []string{"ratios:", "targets:", "checks:"} {
		if !hasLine(lines, section) {
			t.Errorf("no %q section", section)
		}
	}
	if n := strings.Count(table, "\n  met ") + strings.Count(table, "\n  MISSED "); n != wantTargets {
		t.Errorf("%d targets evaluated, want %d", n, wantTargets)
	}
	for _, ratio := range []string{"(h)/(g)", "(h)/(a)", "(b)/(g)", "(i)/(b)", "(e)/(f)", "(e) etcd lookups per 100 forged tokens"} {
		if !strings.Contains(table, "\n  "+ratio) {
			t.Errorf("no ratio %s", ratio)
		}
	}
	if !hasLine(lines, "rate limits: (i)'s 20 users at 1000000/1s; 20 other users") || !strings.Contains(table, "enforced by this build: ") {
		t.Error("no rate limits note")
	}
}

func checkInvariants(t *testing.T, rep *Report) {
	t.Helper()
	for _, f := range rep.Fronts {
		if f.Requests == 0 || f.Failed != 0 {
			t.Errorf("(%s): %d requests answered as expected, %d not", f.Key, f.Requests, f.Failed)
		}
		if f.RPS <= 0 || f.P50 <= 0 || f.P99 < f.P50 {
			t.Errorf("(%s): %.0f req/s, p50 %.0f µs, p99 %.0f µs", f.Key, f.RPS, f.P50, f.P99)
		}
	}
	e, f := rep.Front("e"), rep.Front("f")
	if f.Lookups != 0 || f.EtcdReads != 0 {
		t.Errorf("(f) read etcd: %d lookups, %d reads", f.Lookups, f.EtcdReads)
	}
	if e.DistinctTokens == 0 || e.Lookups > e.DistinctTokens {
		t.Errorf("(e): %d lookups for %d distinct tokens", e.Lookups, e.DistinctTokens)
	}
	if n := rep.NegativeCache; n.Lookups > int64(n.Tokens) {
		t.Errorf("(e): %d tokens sent twice each read etcd %d times", n.Tokens, n.Lookups)
	}
	if a := rep.Front("a"); a.RatioToA != 1 {
		t.Errorf("(a) ratio to itself is %v", a.RatioToA)
	}
}

func checkJSON(t *testing.T, rep *Report) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Machine struct {
			GOMAXPROCS int `json:"gomaxprocs"`
		} `json:"machine"`
		Fronts []struct {
			Key string  `json:"key"`
			RPS float64 `json:"requests_per_second"`
		} `json:"fronts"`
		Targets []Target `json:"targets"`
		Ratios  []Ratio  `json:"ratios"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Machine.GOMAXPROCS < 1 || len(back.Fronts) != len(frontKeys) || len(back.Targets) != wantTargets || len(back.Ratios) != 6 {
		t.Errorf("JSON report: %s", b)
	}
}

// checkCleanedUp wants Caddy stopped (no front end still listening) and
// nothing left in the temporary directory.
func checkCleanedUp(t *testing.T, rep *Report, tmp string) {
	t.Helper()
	for _, f := range rep.Fronts {
		u, err := url.Parse(f.URL)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("(%s) still listens at %s", f.Key, u.Host)
		}
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func hasCheck(rep *Report, prefix string) bool {
	for _, c := range rep.Checks {
		if c.OK && strings.HasPrefix(c.What, prefix) {
			return true
		}
	}
	return false
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if diff := got - c.want; diff < -c.want/100 || diff > c.want/100 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", c.q, got, c.want)
		}
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("an empty histogram has a median")
	}
	for ns := int64(0); ns < 1<<20; ns = ns*5/4 + 1 {
		i := bucketOf(ns)
		if ns < lowerBound(i) || ns >= lowerBound(i+1) {
			t.Fatalf("%d ns in bucket %d = [%d, %d)", ns, i, lowerBound(i), lowerBound(i+1))
		}
	}
}

func TestTokenSources(t *testing.T) {
	if err := checkGenerator(); err != nil {
		t.Fatal(err)
	}
	g := newUnknownTokens()
	seen := map[string]bool{}
	for range 1000 {
		tok := g.next()
		if seen[tok] {
			t.Fatalf("unknown token %s repeated", tok)
		}
		seen[tok] = true
	}
	if _, err := malformedTokens(10); err != nil {
		t.Fatal(err)
	}
}

func TestRoundNoise(t *testing.T) {
	front := func(rps ...float64) *FrontResult { return &FrontResult{RoundRPS: rps} }
	tests := []struct {
		name string
		x, y *FrontResult
		want float64
	}{
		{"one round", front(90), front(100), minNoise},
		{"steady", front(99, 99, 99), front(100, 100, 100), minNoise},
		// Ratios 0.9, 1.0, 1.1: mean 1, standard deviation 0.1.
		{"spread", front(90, 100, 110), front(100, 100, 100), 0.2},
		{"rounds without y", front(90, 100), front(0, 100), minNoise},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := roundNoise(tt.x, tt.y); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("roundNoise = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWithinNoiseTarget: (i) against (b) is met within the rounds' noise,
// missed below it, and never judged met when the rounds are too noisy.
func TestWithinNoiseTarget(t *testing.T) {
	tests := []struct {
		name string
		b, i []float64
		met  bool
	}{
		{"equal", []float64{1000, 1000, 1000}, []float64{1000, 1000, 1000}, true},
		{"1% slower", []float64{1000, 1000, 1000}, []float64{990, 990, 990}, true},
		{"5% slower, steady", []float64{1000, 1000, 1000}, []float64{950, 950, 950}, false},
		{"too noisy", []float64{1000, 1000, 1000}, []float64{700, 1000, 1300}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := func(key string, rounds []float64) FrontResult {
				f := FrontResult{Key: key, Requests: 1, RoundRPS: rounds}
				for _, r := range rounds {
					f.RPS += r / float64(len(rounds))
				}
				return f
			}
			rep := &Report{Fronts: []FrontResult{front("b", tt.b), front("i", tt.i)}}
			for _, target := range targets(rep) {
				if strings.HasPrefix(target.What, "(i) ") {
					if target.Skipped || target.Met != tt.met {
						t.Errorf("%s: met %v (%s), want %v", target.What, target.Met, target.Measured, tt.met)
					}
					return
				}
			}
			t.Fatal("no (i) target")
		})
	}
}
