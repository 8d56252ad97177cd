// Package policy decides whether a policy-based role allows a request.
//
// A policy is a list of statements {effect, methods, paths}. A request is
// allowed when some allow statement matches it and no deny statement does
// (deny wins), over the union of the user's policies.
//
// Paths: "*" matches any characters within one segment (never "/"); a
// trailing "/*" or "**" matches any remainder. Patterns are matched against
// cleaned paths ("//", "." and ".." resolved, "\" read as "/").
//
// Because the upstream may read a path differently from the gateway, a
// request is judged under every plausible reading of its path (decoded once,
// as routed; as escaped on the wire; fully decoded) and admitted only if
// every reading is allowed and none is denied. Deny statements also match
// regardless of case, allow statements only exactly: a variant spelling can
// widen a denial, never an allowance.
package policy
