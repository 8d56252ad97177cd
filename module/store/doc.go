// Package store keeps tokengate's data in etcd: organizations, accounts,
// users, tokens, policies and the audit trail, under one key prefix.
//
// Every change that touches several keys (a user and its tokens, a deletion
// and its audit event) is one etcd transaction guarded by the revisions of
// everything it read, so concurrent admins cannot lose each other's writes.
// One change is larger than a transaction may be: deleting an account takes
// its key first, which ends access through it, then removes it from the
// users listing it in batches (see DeleteAccount).
//
// A token's secret never reaches the store: tokens are keyed by the SHA-256
// of the secret.
//
// Keys, below the prefix:
//
//	/orgs/<org>                        organization
//	/accounts/<org>/<act>              account
//	/accountids/<act>                  index: the organization an account id belongs to
//	/accountids                        marker: the index holds every account
//	/policies/<org>/<pol>              policy
//	/users/<org>/<user>                user
//	/tokens/<sha256 hex>               token, found by the digest a client presents
//	/usertokens/<org>/<user>/<tok>     index: a user's tokens, value is the digest
//	/_lastused/<org>/<user>/<tok>      when the token was last used (schema 1: /lastused/…)
//	/_lastclient/<org>/<user>/<tok>    the client address and user agent of its last use
//	/_usage/<day>/<org>/<user>/<gw>     a gateway's counts of a user's requests on a UTC day (module/usage)
//	/_ratelimit/…                      rate-limit budgets shared by the gateways (module/ratelimit)
//	/audit/<org>/<newest-first seq>    audit event
//	/webhooks/<org>/<wh>               webhook (with its signing secret)
//	/whcursors/<org>/<wh>              the audit revision a webhook's deliveries reached
//	/whdeliveries/<org>/<wh>/<seq>     a webhook's delivery attempts, newest first (the last 100)
//	/expiring/<org>/<user>/<tok>       which token.expiring warnings a token has had
//	/dormant/<org>/<user>              the last activity a user.dormant event was written for
//	/leader/webhooks/<lease>           the election of the gateway delivering webhooks
//	/schema                            the layout's version (see CheckSchema)
//
// The identity cache watches only [/accounts/, /v) (VerdictRange): the
// keys written on the request path sort before it ("_" < "a"), webhook
// state after it.
package store
