// Package report takes reports of leaked credentials: the public
// POST /credentials/revoke of the admin API, which secret scanners and
// anyone who finds a token call.
//
// A report must not tell its sender which of the credentials were live, by
// its answer or by its timing. So the API only checks the report, hashes
// the well-formed credentials and hands their digests to a Revoker, whose
// worker revokes the live ones a few milliseconds later; the answer never
// waits on a lookup. A Limiter bounds how often one client may report.
package report
