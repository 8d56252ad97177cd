// Package caddyfile teaches Caddy's Caddyfile the tokengate global option
// and directives. It only translates: every setting lands in the JSON of the
// modules in module/tokengate, which is where defaults and checks live.
package caddyfile
