// Package webhook delivers the audit trail to the webhooks organizations
// subscribe, as the Standard Webhooks specification describes
// (https://www.standardwebhooks.com): a POST of {"type", "timestamp",
// "data"} with the headers webhook-id, webhook-timestamp and
// webhook-signature (v1, HMAC-SHA256 keyed with the whsec_ secret).
//
// One gateway of a cluster delivers at a time: the Engine campaigns in an
// etcd election (go.etcd.io/etcd/client/v3/concurrency), and only the
// leader's term delivers. Per webhook it follows the organization's audit
// events in audit order (an etcd watch from the webhook's cursor; when etcd
// has compacted that history, a read of the audit keys newer than the
// cursor), delivers one event at a time, retries a failed one with backoff
// for RetryFor (24 h) before giving it up, and moves the cursor in etcd
// only once an event is done with — in the transaction that records the
// attempt, guarded by the leadership. A crash or a lost election therefore
// re-delivers at most the event in flight, with the same webhook-id.
//
// The leader also warns of tokens about to expire: the audit event
// token.expiring, 7 days and 1 day ahead, once per token and window.
//
// Deliveries never reach loopback, private, link-local and similar
// addresses unless allowed (webhook_allow_private): CheckURL judges a URL
// when a webhook is saved, and the dialer judges every address it
// connects to, so neither a DNS change nor a redirect gets there.
package webhook
