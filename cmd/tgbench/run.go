package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// repeatTokens is how many unknown tokens the negative-cache check sends
// twice each.
const repeatTokens = 200

// run does one whole benchmark and returns its report. Progress goes to
// log; everything it started is stopped before it returns.
func run(ctx context.Context, opts options, log io.Writer) (rep *Report, err error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	b, err := setUp(ctx, opts, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if tdErr := b.tearDown(); tdErr != nil {
			err = errors.Join(err, tdErr)
		}
	}()

	b.preflight(ctx)
	fmt.Fprintln(log, "warming (b)'s cache")
	again, err := warm(ctx, b.app, b.front("b").url, b.users)
	if err != nil {
		return nil, err
	}
	b.check(again == 0, "(b) cache warm: a second pass over every token read etcd %d times", again)
	if b.isSelected(b.front("i")) {
		fmt.Fprintln(log, "warming (i)'s cache")
		again, err := warm(ctx, b.app, b.front("i").url, b.limited)
		if err != nil {
			return nil, err
		}
		b.check(again == 0, "(i) cache warm: a second pass over every token read etcd %d times", again)
	}

	fronts := b.selected()
	if opts.Warmup > 0 {
		fmt.Fprintf(log, "warm-up, %s per front end\n", opts.Warmup)
		for _, f := range fronts {
			b.measure(ctx, f, opts.Warmup, false)
		}
	}
	if err := b.rounds(ctx, fronts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	b.checkRounds()
	b.checkNegativeCache(ctx)
	return b.report(), nil
}

// rounds runs the measured rounds, interleaved, under the profiles asked for.
func (b *bench) rounds(ctx context.Context, fronts []*frontEnd) error {
	prof, err := startProfiles(b.opts.CPUProfile, b.opts.MemProfile)
	if err != nil {
		return err
	}
	for r := 0; r < b.opts.Rounds && ctx.Err() == nil; r++ {
		fmt.Fprintf(b.log, "round %d/%d:", r+1, b.opts.Rounds)
		for _, f := range fronts {
			if ctx.Err() != nil {
				break
			}
			res := b.measure(ctx, f, b.opts.Duration, true)
			fmt.Fprintf(b.log, " (%s) %.0f/s", f.key, float64(res.ok)/res.elapsed.Seconds())
		}
		fmt.Fprintln(b.log)
	}
	return prof.stop(b.log)
}

// preflight sends each front end one request with valid credentials and
// one without, before anything is measured, and records what it got.
func (b *bench) preflight(ctx context.Context) {
	client := newClient()
	defer client.CloseIdleConnections()
	u := b.users[0]
	probe := func(key, auth string) (int, string) {
		status, seen, err := get(ctx, client, b.front(key).url, auth)
		if err != nil {
			return 0, err.Error()
		}
		return status, seen
	}

	status, seen := probe("a", "")
	b.check(status == http.StatusOK && seen == "", "(a) answers 200 and tags nothing (got %d, upstream saw %q)", status, seen)
	for _, key := range []string{"b", "c"} {
		status, seen = probe(key, "Bearer "+u.token)
		b.check(status == http.StatusOK && seen == u.id, "(%s) answers 200 for a valid token, the user's ID upstream (got %d, upstream saw %q)", key, status, seen)
		status, _ = probe(key, "")
		b.check(status == http.StatusUnauthorized, "(%s) answers 401 without a token (got %d)", key, status)
	}
	f := b.front("d")
	creds := f.newCreds(0)()
	status, _ = probe("d", creds)
	b.check(status == http.StatusOK, "(d) answers 200 for valid credentials (got %d)", status)
	status, _ = probe("d", "")
	b.check(status == http.StatusUnauthorized, "(d) answers 401 without credentials (got %d)", status)
	status, _ = probe("e", b.front("e").newCreds(0)())
	b.check(status == http.StatusUnauthorized, "(e) answers 401 for an unknown token (got %d)", status)
	status, _ = probe("f", b.front("f").newCreds(0)())
	b.check(status == http.StatusUnauthorized, "(f) answers 401 for a malformed token (got %d)", status)
	if b.isSelected(b.front("g")) {
		status, seen = probe("g", "")
		b.check(status == http.StatusOK && seen != "", "(g) answers 200, the static identity upstream (got %d, upstream saw %q)", status, seen)
	}
	status, seen = probe("h", "Bearer "+u.token)
	b.check(status == http.StatusOK && seen == u.id, "(h) answers 200 for a valid token, the user's ID upstream (got %d, upstream saw %q)", status, seen)
	status, _ = probe("h", "")
	b.check(status == http.StatusUnauthorized, "(h) answers 401 without a token (got %d)", status)
	b.checkIdentityNames(ctx, client)
	if b.isSelected(b.front("i")) {
		b.preflightRateLimits(ctx, client)
	}
}

// checkIdentityNames records which identity headers reach the upstream
// through the fronts that send them: all seven, or with (h) the two the
// contract requires.
func (b *bench) checkIdentityNames(ctx context.Context, client *http.Client) {
	all := "X-Tokengate-Account-Id X-Tokengate-Org-Id X-Tokengate-Role X-Tokengate-Token-Id X-Tokengate-User-Id X-Tokengate-User-Name X-Tokengate-User-Type"
	want := map[string]string{"b": all, "g": all, "h": "X-Tokengate-User-Id X-Tokengate-User-Type"}
	auth := map[string]string{"b": "Bearer " + b.users[0].token, "h": "Bearer " + b.users[0].token}
	if b.isSelected(b.front("i")) {
		want["i"], auth["i"] = all, "Bearer "+b.limited[0].token
	}
	for _, key := range []string{"b", "g", "h", "i"} {
		if _, ok := want[key]; !ok || !b.isSelected(b.front(key)) {
			continue
		}
		status, names, err := probeIdentity(ctx, client, b.front(key).url, auth[key])
		if err != nil {
			names = err.Error()
		}
		b.check(status == http.StatusOK && names == want[key], "(%s) the upstream gets exactly the identity headers %s (got %d, %s)", key, want[key], status, names)
	}
}

// checkRounds records the invariants of the measured rounds.
func (b *bench) checkRounds() {
	for _, f := range b.selected() {
		msg := ""
		if f.total.firstErr != "" {
			msg = "; first: " + f.total.firstErr
		}
		b.check(f.total.failed == 0, "(%s) every measured request answered as expected (%d of %d not%s)", f.key, f.total.failed, f.total.sent, msg)
	}
	if f := b.front("e"); b.isSelected(f) {
		b.check(f.usage.Lookups <= f.total.sent, "(e) etcd lookups ≤ distinct tokens (%d lookups, %d tokens)", f.usage.Lookups, f.total.sent)
	}
	if f := b.front("f"); b.isSelected(f) {
		b.check(f.usage.Lookups == 0 && f.usage.EtcdReads == 0, "(f) no etcd lookups (%d lookups, %d etcd reads)", f.usage.Lookups, f.usage.EtcdReads)
	}
}

// checkNegativeCache sends fresh unknown tokens twice each through (e):
// within negative_ttl the second request must not read etcd again.
func (b *bench) checkNegativeCache(ctx context.Context) {
	client := newClient()
	defer client.CloseIdleConnections()
	gen := newUnknownTokens()
	url := b.front("e").url
	before := b.app.Verifier().Stats().Lookups
	start := time.Now()
	var statuses []string
	for range repeatTokens {
		auth := gen.next()
		for range 2 {
			status, _, err := get(ctx, client, url, auth)
			if err != nil || status != http.StatusUnauthorized {
				statuses = append(statuses, fmt.Sprint(status, err))
			}
		}
	}
	lookups := b.app.Verifier().Stats().Lookups - before
	ttl := b.app.Verifier().Config().NegativeTTL
	b.negative = negativeCheck{Tokens: repeatTokens, Requests: 2 * repeatTokens, Lookups: lookups, Within: time.Since(start), NegativeTTL: ttl}
	b.check(len(statuses) == 0, "(e) repeated unknown tokens answered 401 (%d answers otherwise%s)", len(statuses), listed(statuses))
	b.check(lookups <= repeatTokens && time.Since(start) < ttl,
		"(e) %d unknown tokens sent twice each within negative_ttl (%s, took %s): %d etcd lookups", repeatTokens, ttl, time.Since(start).Round(time.Millisecond), lookups)
}

// listed appends the first few items to a message.
func listed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return ": " + strings.Join(items[:min(len(items), 3)], ", ")
}

func (b *bench) isSelected(f *frontEnd) bool {
	return strings.Contains(b.opts.Fronts, f.key)
}

// check records one invariant of the run.
func (b *bench) check(ok bool, format string, args ...any) {
	b.checks = append(b.checks, Check{OK: ok, What: fmt.Sprintf(format, args...)})
}
