package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// rateLimitNote says what (i) ran beside: the users with a rate_limit, and
// whether this build's handler enforces rate_limit at all. Until it does,
// (i) measures (b)'s path with other tokens and its figure means nothing
// more; the users carry their rate_limit in the store all the same.
type rateLimitNote struct {
	LimitedUsers int    `json:"limited_users"` // (i)'s
	LimitedRate  string `json:"limited_rate"`
	OtherUsers   int    `json:"other_users"` // no front end's
	OtherRate    string `json:"other_rate"`
	Enforced     bool   `json:"enforced"`
	// Probe is what a user allowed one request a minute got for
	// probeRequests requests in a row.
	Probe string `json:"probe"`
}

// probeRequests is how many requests the one-a-minute user sends: more
// than two, so that a minute boundary between the first two still leaves
// two in one window.
const probeRequests = 4

// preflightRateLimits checks that (i) answers as (b) does, that its users
// and the others carry their rate_limit as the verifier sees it, and
// probes whether the handler enforces rate_limit.
func (b *bench) preflightRateLimits(ctx context.Context, client *http.Client) {
	f := b.front("i")
	u := b.limited[0]
	status, seen, err := get(ctx, client, f.url, "Bearer "+u.token)
	if err != nil {
		seen = err.Error()
	}
	b.check(status == http.StatusOK && seen == u.id, "(i) answers 200 for a valid token, the user's ID upstream (got %d, upstream saw %q)", status, seen)
	status, _, _ = get(ctx, client, f.url, "")
	b.check(status == http.StatusUnauthorized, "(i) answers 401 without a token (got %d)", status)

	b.checkLimit(ctx, "(i)'s users", u, limitedUserRate)
	if len(b.others) > 0 {
		b.checkLimit(ctx, "the other users", b.others[len(b.others)-1], otherUserRate)
	}

	var statuses []string
	for range probeRequests {
		status, _, err := get(ctx, client, f.url, "Bearer "+b.oneAMinute.token)
		if err != nil {
			statuses = append(statuses, err.Error())
			continue
		}
		statuses = append(statuses, fmt.Sprint(status))
		if status == http.StatusTooManyRequests {
			b.rateLimits.Enforced = true
		}
	}
	b.rateLimits.LimitedUsers, b.rateLimits.LimitedRate = len(b.limited), rateString(limitedUserRate)
	b.rateLimits.OtherUsers, b.rateLimits.OtherRate = len(b.others), rateString(otherUserRate)
	b.rateLimits.Probe = fmt.Sprintf("a user allowed %s got %s", rateString(oneAMinuteRate), strings.Join(statuses, " "))
}

// checkLimit records whether the verifier sees a user's rate_limit.
func (b *bench) checkLimit(ctx context.Context, who string, u user, want store.RateLimit) {
	id, err := b.app.Verifier().Verify(ctx, u.token)
	got := "no rate_limit"
	switch {
	case err != nil:
		got = err.Error()
	case id.Limit != nil:
		got = fmt.Sprintf("%d/%s", id.Limit.Requests, id.Limit.Window)
	}
	wantWindow, _ := time.ParseDuration(want.Window)
	b.check(err == nil && id.Limit != nil && id.Limit.Requests == want.Requests && id.Limit.Window == wantWindow,
		"%s carry rate_limit %s (the verifier sees %s)", who, rateString(want), got)
}

func rateString(r store.RateLimit) string { return fmt.Sprintf("%d/%s", r.Requests, r.Window) }
