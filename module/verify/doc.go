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
// that point is dropped. When the store's revisions go back (restored from a
// snapshot without a bump), the heartbeat sees a linearizable read behind
// what the watch had applied, and the change log starts a new epoch: no
// entry of an earlier one is current, and the watch starts from scratch.
//
// On a store at schema 3 a cold lookup reads the copy of the token's record
// and user under its digest; repair.go says when copies are trusted.
//
// Tokens never issued are refused from memory (filter.go). Anyone can mint
// well-formed tokens, the checksum being public; without help each would
// cost a lookup. On a cache miss, a filter of every token digest in etcd —
// a binary fuse filter built from one scan at one revision, plus an overlay
// of the tokens the watch has seen created since — says whether the token
// may exist. It has no false negatives for changes the watch has applied
// and 1 in 256 false positives, which go the ordinary way (lookup, then the
// negative cache), as do deleted tokens until the next build. With its
// overlay at its largest it takes under 2 bytes per token from about 40 000
// tokens up (1.58 at 100 000, 1.52 at a million); below, the overlay's
// fixed 26 kB dominate. It is built again in the background when
// max(1024, n/64) tokens were created or n/8 deleted since, every ten
// minutes while tokens change, and after the watch lost its history; it
// answers only when complete and with the watch in sync within MaxStale.
//
// A token the filter refuses may have been created a moment ago on another
// gateway, its watch event still on its way: Config.FilterFallbacks such
// tokens a second (default 20) are looked up anyway, and requests for one
// being looked up share that lookup. Under a flood of forged tokens that
// budget is spent, so a just-created token meets at worst a refusal until
// its watch event arrives, milliseconds later.
//
// When etcd cannot be reached, cached identities are honoured for at most
// MaxStale after the last moment the watch was known to be in sync; after
// that, and for anything not cached, Verify answers ErrUnavailable — except
// for tokens the filter, in sync within MaxStale, refuses: those are
// ErrUnknown.
package verify
