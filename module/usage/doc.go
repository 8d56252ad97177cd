// Package usage counts what each user's requests did, per hour, cheaply
// enough for the request path, and keeps the counts as compact daily
// rollups: one etcd key per user, UTC day and gateway, merged when read.
//
// A gateway counts in memory (Counter: a map lookup and an atomic add per
// request), moves the counts into its day books once a minute (Books) and
// writes the books of the users that changed. Readers sum the rollups of
// every gateway (Merge) into a Report.
package usage
