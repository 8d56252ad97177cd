// Package caddytest runs a real Caddy inside a test: a Caddyfile adapted
// and loaded in-process, on free loopback ports, stopped when the test ends.
// Caddy runs one config per process, so tests using it do not run in
// parallel with each other.
package caddytest

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/tokengate/tokengate/internal/freeport"
)

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freeport.Pick(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// Adapt turns a Caddyfile into Caddy's JSON, after replacing each {{KEY}}
// with its value in vars.
func Adapt(t testing.TB, caddyfile string, vars map[string]string) []byte {
	t.Helper()
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	body := strings.NewReplacer(pairs...).Replace(caddyfile)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	return cfg
}

// Load adapts the Caddyfile and runs it; Caddy stops when the test ends.
func Load(t testing.TB, caddyfile string, vars map[string]string) []byte {
	t.Helper()
	cfg := Adapt(t, caddyfile, vars)
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
	t.Cleanup(func() { caddy.Stop() })
	return cfg
}
