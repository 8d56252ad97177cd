// Package admin serves tokengate's admin JSON API: organizations, accounts,
// policies, users and their tokens, and the audit trail.
//
// One http.Handler (API) serves it in two places: under /tokengate/ on
// Caddy's admin endpoint, for the operator of the machine (full access, and
// the only place organizations are created), and as the
// http.handlers.tokengate_admin handler on any site, for callers holding an
// admin's bearer token. Every call is authorized against the caller; every
// change writes an audit event in the same etcd transaction.
package admin
