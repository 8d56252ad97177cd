package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// newClient is one keep-alive connection: a transport of its own allowed a
// single connection, so N clients are exactly N connections, each reused
// request after request as a real API client would.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // loopback targets; never an environment proxy
		MaxConnsPerHost:     1,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

func closeClients(clients []*http.Client) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

// expectation is what a correct answer of a front end looks like.
type expectation struct {
	status int
	tagged bool // the upstream saw an identity
}

// roundResult is what the connections of one front end did in one round.
type roundResult struct {
	ok       int64 // answers as expected
	failed   int64 // other answers and transport errors
	sent     int64 // requests sent, answered or not
	firstErr string
	elapsed  time.Duration
	hist     histogram
}

func (r *roundResult) merge(o *roundResult) {
	r.ok += o.ok
	r.failed += o.failed
	r.sent += o.sent
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.hist.merge(&o.hist)
}

// drive runs one round: every connection sends requests back to back (a
// closed loop) until d has passed. Requests in flight at the deadline are
// waited for, not cancelled: cancelling would close the connection while
// the server goes on working (a bcrypt, an etcd read), and that work would
// be charged to the next front end's round. The round's time runs until
// the last answer, so a slow front end's tail counts against it.
func drive(ctx context.Context, url string, clients []*http.Client, creds []credentials, want expectation, d time.Duration) *roundResult {
	results := make([]roundResult, len(clients))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			work(ctx, url, clients[i], creds[i], want, deadline, &results[i])
		})
	}
	wg.Wait()
	total := &roundResult{elapsed: time.Since(start)}
	for i := range results {
		total.merge(&results[i])
	}
	return total
}

// work is one connection's loop.
func work(ctx context.Context, url string, client *http.Client, creds credentials, want expectation, deadline time.Time, res *roundResult) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			res.fail(err.Error())
			return
		}
		if auth := creds(); auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		res.sent++
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			res.fail(err.Error())
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			latency := time.Since(start)
			if problem := want.check(resp); problem != "" {
				res.fail(problem)
			} else {
				res.ok++
				res.hist.record(latency)
			}
		}
		if !time.Now().Before(deadline) {
			return
		}
	}
}

func (r *roundResult) fail(msg string) {
	r.failed++
	if r.firstErr == "" {
		r.firstErr = msg
	}
}

// check says what is wrong with an answer, or "".
func (e expectation) check(resp *http.Response) string {
	if resp.StatusCode != e.status {
		return "status " + resp.Status
	}
	if e.tagged && len(resp.Header[seenHeader]) != 1 {
		return "the upstream saw no identity header"
	}
	return ""
}
