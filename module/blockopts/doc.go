// Package blockopts reads the sub-options of a Caddyfile block the way
// every tokengate module reads them: each at most once, with exactly the
// arguments it takes, mistakes reported with their line.
package blockopts
