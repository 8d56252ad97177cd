// Package reading tells every way an upstream may read the parts of a
// request the gateway judges, so the gateway can judge all of them.
//
// Web frameworks disagree on how to read a request: PHP turns "." and " "
// in parameter names into "_" and drops everything from a NUL byte on, Rack
// splits the query on ";" as well as "&" and skips leading brackets of a
// name, qs splits a pair at "]=", ASP.NET binds names in any letter case,
// Rails, Laravel, Symfony and Express take the method from "_method" in a
// form body. A gateway that reads a request one way while the upstream
// reads it another has judged a different request. The functions here
// return the union of the readings; the gateway admits a request only when
// every reading is allowed, and refuses what it cannot read unambiguously.
//
// The common case allocates nothing: plain ASCII names are compared in
// place (TestQueryValuesAllocatesNothing holds it at zero); what is found,
// and unusual spellings (escapes, non-ASCII, cookies split at white
// space), may allocate.
package reading
