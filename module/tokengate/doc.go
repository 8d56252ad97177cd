// Package tokengate holds tokengate's Caddy modules: the "tokengate" app,
// which owns the connection to etcd, the store and the verified-identity
// cache, and (in handler.go) the http.handlers.tokengate middleware.
package tokengate
