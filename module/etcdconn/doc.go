// Package etcdconn gives tokengate its etcd client: either connected to an
// operator's cluster (endpoints, credentials, TLS), or to a single-node etcd
// embedded in the process, listening on loopback only and keeping its data in
// a directory across restarts.
package etcdconn
