// Package etcdconn gives tokengate its etcd client: either connected to an
// operator's cluster (endpoints, credentials, TLS), or to a single-node etcd
// embedded in the process, serving only on a unix socket in its private
// directory, where it keeps its data across restarts.
package etcdconn
