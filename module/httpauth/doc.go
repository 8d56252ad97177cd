// Package httpauth is how every part of tokengate that takes a bearer
// token over HTTP — the gateway's handler, the admin API, the console —
// reads it and answers a refusal: one reading of the Authorization header,
// one RFC 6750 challenge per status, one JSON error body, one record of
// the refusal in the access log.
package httpauth
