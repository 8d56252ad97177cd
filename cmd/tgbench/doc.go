// Command tgbench measures tokengate side by side with what people would run
// instead, in one process and one run, so that every figure in its table was
// taken on the same machine under the same noise.
//
// It starts one upstream and nine front ends, each a site of one in-process
// Caddy on its own loopback port:
//
//	(a) reverse_proxy with no authentication: the baseline
//	(b) tokengate api mode, valid cached tokens spread over -users users
//	(c) forward_auth to a token service written here (a map lookup: the
//	    best case for that design)
//	(d) basic_auth with bcrypt, as Caddy ships it: the password hashed at
//	    cost 14 (as `caddy hash-password` does) and the Caddyfile's
//	    basic_auth, which remembers each verdict, so one bcrypt per
//	    distinct password and a map lookup afterwards
//	(e) tokengate, every request a distinct unknown well-formed token
//	(f) tokengate, malformed tokens
//	(g) no authentication, but the seven identity headers (b) sends
//	    upstream, set statically; (g) − (a) is what tagging costs Caddy's
//	    proxy and the upstream, (b) − (g) is tokengate's own work
//	(h) tokengate as (b) with identity_headers user-id user-type: only the
//	    two identity headers the contract requires go upstream; against
//	    (g) and (a), what the other five cost
//	(i) tokengate as (b), but every token sent is a user's with a
//	    rate_limit it never reaches (-users more users, 1000000/1s each),
//	    while -other-users users that no front end uses carry a rate_limit
//	    too: the issue's "cached-path throughput unchanged within noise
//	    with rate limits configured". Those users are in the store through
//	    every round, so (b) runs beside them as well; compare (b) of runs
//	    with and without i in -fronts for what merely configuring them
//	    costs. A user allowed one request a minute shows whether the
//	    handler enforces rate_limit at all; until it does, (i) is (b)'s
//	    path with other tokens
//
// tokengate runs on an embedded etcd in a temporary directory; users and
// tokens are created through module/store on the app's own store. Each
// front end is driven by -connections keep-alive connections, one goroutine
// each, in closed loop for -duration, and rounds are interleaved (a, b, c,
// d, e, f, g, h, i, a, b, …) so that machine noise hits every front end
// alike.
//
// Usage:
//
//	go run ./cmd/tgbench [-duration 2s] [-rounds 5] [-connections 16]
//	    [-users 1000] [-other-users 1000] [-bcrypt-cost 14]
//	    [-fronts abcdefghi] [-warmup 500ms]
//	    [-json] [-cpuprofile cpu.pprof] [-memprofile mem.pprof]
//
// -cpuprofile and -memprofile cover the measured rounds of the front ends
// chosen with -fronts (-fronts b profiles tokengate's cached path alone);
// the tool prints the go tool pprof command that reads them. Take them in
// separate runs: sampling allocations finely slows the CPU profile.
//
// The table gives requests/s, p50 and p99 latency, the ratio of requests/s
// to (a), etcd lookups and etcd range requests per 1000 requests for the
// tokengate front ends, and the process's CPU time and allocations per
// request. Below it, the ratios the issue quotes ((h)/(g), (h)/(a),
// (b)/(g), (i)/(b), (e)/(f), and (e)'s etcd lookups per 100 forged
// tokens), each beside the median of its per-round ratios and its ratio of
// CPU time per request; then the targets (met or missed) and the
// checks that make the run valid; the exit status is 1 when a check
// failed. "Within noise" means no further below 1 than twice the
// round-to-round spread of the ratio, and at least 2%; a spread past 10%
// is too noisy to judge, and the target is missed.
package main
