// Package ratelimit keeps each user's rate_limit — at most N requests per
// window, windows aligned on the Unix epoch — as one budget across every
// gateway sharing the etcd cluster, without a request ever waiting on etcd.
//
// Each gateway decides from memory: it admits a user's requests while they
// fit its allowance for the current window. Allowances start equal (the
// budget divided, in whole requests, between the gateways registered under
// etcd leases). A user whose requests on one gateway reach half of that
// gateway's allowance in a window turns hot there: the gateway publishes
// its demand (requests per window seen, admitted or not) and its count for
// the window under its lease, and every gateway with traffic of that user
// publishes its own. From the published figures each gateway computes the
// same division: the window's budget divided max-min fair by demand (no
// gateway gets more than 1.25 times its demand while another wants more,
// what nobody wants is spread evenly), and what is left of it — less every
// count published for the window — handed out by what each gateway still
// needs of its part, apportioned in whole requests the same way on every
// gateway. Budget moves between gateways only as budget not yet spent.
//
// What was admitted in a window stays counted: a changed limit keeps the
// count and never ends the window sooner; a gateway that stops leaves its
// counts under a lease lasting until its windows end.
//
// Costs: users below half their allowance cost no etcd traffic at all. A
// hot user costs each gateway with its traffic one key, written when its
// demand moves by more than 10% or another tenth of the budget is admitted
// there, in one transaction per publication interval (250 ms) for all hot
// users of the gateway; every gateway watches the keys. A gateway cut off
// from etcd keeps the allowances it last computed; its lease expires and
// the others divide its part, so while a partition lasts the cluster admits
// up to the budget plus the cut-off gateways' parts.
package ratelimit
