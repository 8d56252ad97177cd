// Package reliability proves tokengate's freshness promises under failure:
// several tokengate processes share a real multi-process etcd cluster
// (package etcdcluster) whose members are killed, paused, restarted and
// compacted while the tests send requests and revoke tokens.
//
// The package itself is the harness that runs tokengate instances as
// processes of their own (the binary built from ./cmd/tokengate, once per
// test binary) in front of an echo upstream; the fault tests live in its
// _test files. Every test asserts the same two things: nothing is wrongly
// admitted (a revoked token never gets through once the watch could have
// delivered its revocation, nor a cached identity past max_stale while etcd
// is away), and nothing is lost (acknowledged writes survive, and requests
// fail only for as long as the fault makes unavoidable).
package reliability
