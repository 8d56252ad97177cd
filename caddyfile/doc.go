// Package caddyfile registers the tokengate global option and directives
// with Caddy's Caddyfile. It only registers: each module parses its own
// block (UnmarshalCaddyfile) and checks its own settings (Validate).
package caddyfile
