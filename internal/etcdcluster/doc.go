// Package etcdcluster runs a real etcd cluster for tests: N members, each a
// separate etcd process (the etcd-server binary, /usr/bin/etcd), on free
// loopback ports, with data in the test's temporary directory.
//
// Because the members are processes of their own, faults are real: Kill is
// kill -9, Pause and Resume are SIGSTOP and SIGCONT, and a restarted member
// comes back on the same ports with the data it had. Clients see exactly
// what they would see in production when a machine dies or hangs.
//
// Without the etcd binary the tests that need it are skipped, except in CI
// (CI=true), where a missing binary fails them: CI must run them.
//
// Process, which runs any child process owned by a test, is shared with the
// harness that runs tokengate instances against the cluster.
package etcdcluster
