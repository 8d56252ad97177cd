package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is everything one run found; -json prints it as is.
type Report struct {
	Machine       Machine       `json:"machine"`
	Command       string        `json:"command"`
	Options       options       `json:"options"`
	NegativeTTL   time.Duration `json:"negative_ttl_ns"`
	Fronts        []FrontResult `json:"fronts"`
	Ratios        []Ratio       `json:"ratios"`
	RateLimits    rateLimitNote `json:"rate_limits"`
	Targets       []Target      `json:"targets"`
	Checks        []Check       `json:"checks"`
	NegativeCache negativeCheck `json:"negative_cache"`
}

// FrontResult aggregates one front end's measured rounds.
type FrontResult struct {
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Requests  int64     `json:"requests"` // answered as expected
	Failed    int64     `json:"failed"`
	Seconds   float64   `json:"seconds"`
	RPS       float64   `json:"requests_per_second"`
	RoundRPS  []float64 `json:"round_requests_per_second"`
	P50       float64   `json:"p50_us"`
	P99       float64   `json:"p99_us"`
	RatioToA  float64   `json:"ratio_to_a,omitempty"` // 0 when (a) was not measured
	Tokengate bool      `json:"tokengate"`
	// Lookups are the verifier's reads of a token from etcd; EtcdReads the
	// range requests the store sent. Both over this front end's rounds.
	Lookups   int64 `json:"lookups"`
	EtcdReads int64 `json:"etcd_reads"`
	// DistinctTokens is the number of distinct tokens sent; only (e), where
	// every request carries a new one.
	DistinctTokens int64   `json:"distinct_tokens,omitempty"`
	CPUPerRequest  float64 `json:"cpu_us_per_request"` // the whole process: client, Caddy, etcd
	AllocsPerReq   float64 `json:"allocs_per_request"`
	BytesPerReq    float64 `json:"alloc_bytes_per_request"`
}

// Ratio compares two front ends (or gives a rate of one), as the issue
// quotes it.
type Ratio struct {
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Detail string  `json:"detail,omitempty"` // readings less disturbed by noise
}

// Target is one of the goals, as this run measured it.
type Target struct {
	What     string `json:"what"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Skipped  bool   `json:"skipped,omitempty"` // a front end it needs was not run
}

// Check is an invariant without which the run's figures mean nothing.
type Check struct {
	OK   bool   `json:"ok"`
	What string `json:"what"`
}

// negativeCheck is the result of sending unknown tokens twice each.
type negativeCheck struct {
	Tokens      int           `json:"tokens"`
	Requests    int           `json:"requests"`
	Lookups     int64         `json:"lookups"`
	Within      time.Duration `json:"within_ns"`
	NegativeTTL time.Duration `json:"negative_ttl_ns"`
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Front returns the result of the front end with the given key, or nil.
func (r *Report) Front(key string) *FrontResult {
	for i := range r.Fronts {
		if r.Fronts[i].Key == key {
			return &r.Fronts[i]
		}
	}
	return nil
}

func (b *bench) report() *Report {
	rep := &Report{
		Machine:       describeMachine(),
		Command:       commandLine(),
		Options:       b.opts,
		NegativeTTL:   b.app.Verifier().Config().NegativeTTL,
		Checks:        b.checks,
		NegativeCache: b.negative,
		RateLimits:    b.rateLimits,
	}
	for _, f := range b.selected() {
		rep.Fronts = append(rep.Fronts, f.result())
	}
	if a := rep.Front("a"); a != nil && a.RPS > 0 {
		for i := range rep.Fronts {
			rep.Fronts[i].RatioToA = rep.Fronts[i].RPS / a.RPS
		}
	}
	rep.Ratios = ratios(rep)
	rep.Targets = targets(rep)
	return rep
}

func (f *frontEnd) result() FrontResult {
	sent := float64(max(f.total.sent, 1))
	r := FrontResult{
		Key:           f.key,
		Name:          f.name,
		URL:           f.url,
		Requests:      f.total.ok,
		Failed:        f.total.failed,
		Seconds:       f.elapsed.Seconds(),
		RoundRPS:      f.perRPS,
		P50:           micros(f.total.hist.quantile(0.50)),
		P99:           micros(f.total.hist.quantile(0.99)),
		Tokengate:     f.tokengate,
		Lookups:       f.usage.Lookups,
		EtcdReads:     f.usage.EtcdReads,
		CPUPerRequest: micros(f.usage.CPU) / sent,
		AllocsPerReq:  float64(f.usage.Mallocs) / sent,
		BytesPerReq:   float64(f.usage.Bytes) / sent,
	}
	if f.elapsed > 0 {
		r.RPS = float64(f.total.ok) / f.elapsed.Seconds()
	}
	if f.key == "e" {
		r.DistinctTokens = f.total.sent
	}
	return r
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// perThousand is events per 1000 requests sent.
func (f *FrontResult) perThousand(n int64) float64 {
	return 1000 * float64(n) / float64(max(f.Requests+f.Failed, 1))
}

// targets evaluates the goals on the report's figures.
func targets(rep *Report) []Target {
	a, b, c, e, f := rep.Front("a"), rep.Front("b"), rep.Front("c"), rep.Front("e"), rep.Front("f")
	g, i := rep.Front("g"), rep.Front("i")
	var out []Target
	add := func(what string, needs []*FrontResult, eval func() (string, bool)) {
		for _, n := range needs {
			if n == nil || n.Requests == 0 {
				out = append(out, Target{What: what, Measured: "not measured", Skipped: true})
				return
			}
		}
		measured, met := eval()
		out = append(out, Target{What: what, Measured: measured, Met: met})
	}
	add("(b) requests/s ≥ 0.97 × (a)", []*FrontResult{a, b}, func() (string, bool) {
		r := b.RPS / a.RPS
		return fmt.Sprintf("%.3f × %s", r, robustRatios(b, a)), r >= 0.97
	})
	add("(b) p99 ≤ (a) p99 + 100 µs", []*FrontResult{a, b}, func() (string, bool) {
		d := b.P99 - a.P99
		return fmt.Sprintf("%+.0f µs", d), d <= 100
	})
	add("(b) requests/s ≥ 1.8 × (c)", []*FrontResult{b, c}, func() (string, bool) {
		r := b.RPS / c.RPS
		return fmt.Sprintf("%.2f × %s", r, robustRatios(b, c)), r >= 1.8
	})
	add("(e) etcd lookups ≤ 1 per distinct token per negative_ttl", []*FrontResult{e}, func() (string, bool) {
		n := rep.NegativeCache
		perToken := float64(e.Lookups) / float64(max(e.DistinctTokens, 1))
		met := perToken <= 1 && n.Lookups <= int64(n.Tokens) && n.Within < n.NegativeTTL
		return fmt.Sprintf("%.3f per token in rounds; %d tokens sent twice: %d lookups", perToken, n.Tokens, n.Lookups), met
	})
	add("(f) zero etcd lookups", []*FrontResult{f}, func() (string, bool) {
		return fmt.Sprintf("%d lookups, %d etcd reads", f.Lookups, f.EtcdReads), f.Lookups == 0 && f.EtcdReads == 0
	})
	add("(b) requests/s ≥ 0.99 × (g)", []*FrontResult{b, g}, func() (string, bool) {
		r := b.RPS / g.RPS
		return fmt.Sprintf("%.3f × %s", r, robustRatios(b, g)), r >= 0.99
	})
	add("(e) requests/s ≥ 0.9 × (f)", []*FrontResult{e, f}, func() (string, bool) {
		r := e.RPS / f.RPS
		return fmt.Sprintf("%.3f × %s", r, robustRatios(e, f)), r >= 0.9
	})
	add("(e) ≤ 1 etcd lookup per 100 forged tokens", []*FrontResult{e}, func() (string, bool) {
		per100 := e.lookupsPer100Tokens()
		return fmt.Sprintf("%.2f per 100 (%d lookups, %d tokens)", per100, e.Lookups, e.DistinctTokens), per100 <= 1
	})
	add("(i) requests/s within noise of (b)", []*FrontResult{b, i}, func() (string, bool) {
		r, noise := i.RPS/b.RPS, roundNoise(i, b)
		measured := fmt.Sprintf("%.3f × (noise %.1f%%: 2 × round-to-round spread, at least %.0f%%) %s", r, 100*noise, 100*minNoise, robustRatios(i, b))
		if !rep.RateLimits.Enforced {
			measured += "; rate_limit not enforced by this build"
		}
		if noise > maxNoise {
			// Within a wide enough noise anything passes.
			return measured + fmt.Sprintf("; noise above %.0f%%: too noisy to judge, run again on a quiet machine", 100*maxNoise), false
		}
		return measured, r >= 1-noise
	})
	return out
}

// minNoise is the least noise "within noise" allows for: below it, a few
// rounds' spread says more about luck than about the machine. maxNoise is
// the most: past it, the run cannot tell a cost from noise and the target
// is missed.
const (
	minNoise = 0.02
	maxNoise = 0.10
)

// roundNoise is how far x/y may fall below 1 and still be noise: twice the
// relative standard deviation of the per-round ratios x/y (rounds are
// interleaved, so each pair ran under similar conditions), at least
// minNoise.
func roundNoise(x, y *FrontResult) float64 {
	var ratios []float64
	for i := range min(len(x.RoundRPS), len(y.RoundRPS)) {
		if y.RoundRPS[i] > 0 {
			ratios = append(ratios, x.RoundRPS[i]/y.RoundRPS[i])
		}
	}
	if len(ratios) < 2 {
		return minNoise
	}
	var mean, sq float64
	for _, r := range ratios {
		mean += r
	}
	mean /= float64(len(ratios))
	for _, r := range ratios {
		sq += (r - mean) * (r - mean)
	}
	sd := math.Sqrt(sq / float64(len(ratios)-1))
	return max(2*sd/mean, minNoise)
}

// lookupsPer100Tokens is (e)'s etcd lookups per 100 distinct forged tokens.
func (f *FrontResult) lookupsPer100Tokens() float64 {
	return 100 * float64(f.Lookups) / float64(max(f.DistinctTokens, 1))
}

// ratios are the comparisons issue 13 quotes, for the front ends measured.
func ratios(rep *Report) []Ratio {
	var out []Ratio
	for _, pair := range [][2]string{{"h", "g"}, {"h", "a"}, {"b", "g"}, {"i", "b"}, {"e", "f"}} {
		x, y := rep.Front(pair[0]), rep.Front(pair[1])
		if x == nil || y == nil || y.RPS == 0 {
			continue
		}
		out = append(out, Ratio{What: fmt.Sprintf("(%s)/(%s) requests/s", x.Key, y.Key), Value: x.RPS / y.RPS, Detail: robustRatios(x, y)})
	}
	if e := rep.Front("e"); e != nil && e.DistinctTokens > 0 {
		out = append(out, Ratio{What: "(e) etcd lookups per 100 forged tokens", Value: e.lookupsPer100Tokens(),
			Detail: fmt.Sprintf("(%d lookups, %d distinct tokens)", e.Lookups, e.DistinctTokens)})
	}
	return out
}

// robustRatios gives two readings of x's speed relative to y that a busy
// machine disturbs less than the aggregate the target is judged on: the
// median of the per-round ratios (rounds are interleaved, so each pair ran
// under similar noise) and the inverse ratio of CPU time per request (what
// the throughput ratio would be were the process alone and CPU-bound).
func robustRatios(x, y *FrontResult) string {
	var ratios []float64
	for i := range min(len(x.RoundRPS), len(y.RoundRPS)) {
		if y.RoundRPS[i] > 0 {
			ratios = append(ratios, x.RoundRPS[i]/y.RoundRPS[i])
		}
	}
	out := "("
	if len(ratios) > 0 {
		slices.Sort(ratios)
		m := ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			m = (ratios[len(ratios)/2-1] + m) / 2
		}
		out += fmt.Sprintf("median of rounds %.2f", m)
	}
	if x.CPUPerRequest > 0 && y.CPUPerRequest > 0 {
		out += fmt.Sprintf("; by CPU per request %.2f", y.CPUPerRequest/x.CPUPerRequest)
	}
	return out + ")"
}

// tableHeader names the table's columns; writeTable aligns them.
var tableHeader = []string{"front end", "req/s", "p50", "p99", "vs (a)", "lookups/1k", "etcd reads/1k", "CPU/req", "allocs/req", "failed"}

// writeTable prints the report for people.
func writeTable(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %s/%s, GOMAXPROCS %d, %d CPUs, %s, %s, load average %s at start\n",
		m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU, m.CPUModel, m.GoVersion, m.LoadAverage)
	fmt.Fprintf(w, "command: %s\n", rep.Command)
	o := rep.Options
	fmt.Fprintf(w, "%d rounds × %s per front end, interleaved; %d keep-alive connections each; %d users; negative_ttl %s\n\n",
		o.Rounds, o.Duration, o.Connections, o.Users, rep.NegativeTTL)

	rows := [][]string{tableHeader}
	for _, f := range rep.Fronts {
		rows = append(rows, f.row())
	}
	writeAligned(w, rows)

	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios:")
		for _, r := range rep.Ratios {
			fmt.Fprintf(w, "  %-40s %7.3f  %s\n", r.What, r.Value, r.Detail)
		}
	}
	if n := rep.RateLimits; n.Probe != "" {
		enforced := "no: (i) measures (b)'s path until the handler enforces rate_limit"
		if n.Enforced {
			enforced = "yes"
		}
		fmt.Fprintf(w, "\nrate limits: (i)'s %d users at %s; %d other users (no front end's) at %s, through every round\n",
			n.LimitedUsers, n.LimitedRate, n.OtherUsers, n.OtherRate)
		fmt.Fprintf(w, "  enforced by this build: %s (%s)\n", enforced, n.Probe)
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, t := range rep.Targets {
		verdict := "MISSED"
		switch {
		case t.Skipped:
			verdict = "-"
		case t.Met:
			verdict = "met"
		}
		fmt.Fprintf(w, "  %-7s %-58s %s\n", verdict, t.What, t.Measured)
	}
	fmt.Fprintln(w, "\nchecks:")
	for _, c := range rep.Checks {
		verdict := "ok"
		if !c.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  %-7s %s\n", verdict, c.What)
	}
}

func (f *FrontResult) row() []string {
	ratio, lookups, reads := "-", "-", "-"
	if f.RatioToA > 0 {
		ratio = fmt.Sprintf("%.3f", f.RatioToA)
	}
	if f.Tokengate {
		lookups = fmt.Sprintf("%.1f", f.perThousand(f.Lookups))
		reads = fmt.Sprintf("%.1f", f.perThousand(f.EtcdReads))
	}
	return []string{
		"(" + f.Key + ") " + f.Name,
		fmt.Sprintf("%.0f", f.RPS),
		formatMicros(f.P50),
		formatMicros(f.P99),
		ratio,
		lookups,
		reads,
		formatMicros(f.CPUPerRequest),
		fmt.Sprintf("%.0f", f.AllocsPerReq),
		fmt.Sprint(f.Failed),
	}
}

// formatMicros prints a duration given in microseconds at a precision
// that suits its size.
func formatMicros(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// writeAligned prints rows with the first column left-aligned and the
// others right-aligned, two spaces apart.
func writeAligned(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(cell)))
			switch {
			case i == 0:
				line.WriteString(cell + pad)
			default:
				line.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, line.String())
	}
}
