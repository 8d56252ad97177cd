// Package ratelimit keeps each user's rate_limit — at most N requests per
// window, windows aligned on the Unix epoch — as one budget across every
// gateway sharing the etcd cluster, without a request ever waiting on etcd.
//
// Each gateway decides from memory: it admits a user's requests while they
// fit its share of the user's budget for the current window. Shares start
// equal (the budget divided by the gateways registered under etcd leases).
// A user whose requests on one gateway reach half of that gateway's share
// in a window turns hot there: the gateway publishes its demand (requests
// per window seen, admitted or not) under its lease, and every gateway with
// traffic of that user publishes its own. From the published demands each
// gateway computes the same max-min fair division — no gateway gets more
// than 1.25 times its demand while another wants more, what nobody wants is
// spread evenly — so the shares add up to the budget and a light client on
// one gateway is not starved by a heavy one on another.
//
// Costs: users below half their share cost no etcd traffic at all. A hot
// user costs each gateway with its traffic one key, written when its demand
// moves by more than 10%, in one transaction per publication interval
// (250 ms) for all hot users of the gateway; every gateway watches the
// keys. A gateway cut off from etcd keeps the shares it last computed; its
// lease expires and the others divide what it held, so while a partition
// lasts the cluster admits up to the budget plus the cut-off gateways'
// shares. Accuracy: per window, the admitted total is at most the budget
// (plus shares moved within the window) once demand has been published; a
// gateway whose client grows faster than its 25% headroom is held to its
// share until the next publication.
package ratelimit
