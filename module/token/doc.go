// Package token implements tokengate's token format: generation from a
// CSPRNG, offline parsing (length, prefix, charset, checksum) and the SHA-256
// digest that is the only form in which a token is ever stored.
//
// A token reads <prefix>_<body><check>: prefix "tgp" for programmatic users or
// "tgu" for a UI user's personal token, 40 base62 characters of randomness, and
// 6 base62 characters holding the CRC32 (IEEE) of everything before them.
// The checksum lets the gateway refuse typos and garbage without a lookup; it
// is not a secret and adds no security.
package token
