// Package verify turns a bearer token into a verified identity: the one
// entry point the gateway and the admin API use (Verifier.Verify).
//
// Identities are cached in memory (ristretto), keyed by the token's SHA-256,
// in front of the store. A miss reads etcd once however many requests wait
// for it; unknown tokens are remembered for a while; malformed tokens never
// reach the cache.
//
// Freshness comes from an etcd watch on the store's prefix. Each cached entry
// records the revision it was read at and the keys it was derived from; the
// watch records, per key bucket, the revision of the latest change. An entry
// whose keys changed after its revision is never served again, so neither a
// revocation nor a fill racing with one can leave a stale identity in use.
// When the watch cannot resume (history compacted), everything cached before
// that point is dropped.
//
// When etcd cannot be reached, cached identities are honoured for at most
// MaxStale after the last moment the watch was known to be in sync; after
// that, and for anything not cached, Verify answers ErrUnavailable, never
// ErrUnknown.
package verify
