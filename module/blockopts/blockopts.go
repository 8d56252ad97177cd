package blockopts

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Seen are the sub-options met so far in one block: giving one twice is an
// error naming its line, never a silent override.
type Seen map[string]bool

// First returns the current sub-option's name, or an error if the block
// (named in the error) already had it.
func (s Seen) First(d *caddyfile.Dispenser, block string) (string, error) {
	name := d.Val()
	if s[name] {
		return "", d.Errf("%s: %s given more than once", block, name)
	}
	s[name] = true
	return name, nil
}

// OneArg reads exactly one argument of the current sub-option, which takes
// no block.
func OneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s: expected one argument", name)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: expected one argument, got more", name)
	}
	if d.NextBlock(d.Nesting()) {
		return "", d.Errf("%s: takes no block", name)
	}
	return v, nil
}

// Flag reads a sub-option that takes neither an argument nor a block.
func Flag(d *caddyfile.Dispenser) error {
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s: takes no argument", name)
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s: takes no block", name)
	}
	return nil
}

// Duration reads the one argument of the current sub-option as a positive
// duration, in Caddy's notation (which adds "d" for days).
func Duration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	v, err := OneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", name, v)
	}
	return caddy.Duration(dur), nil
}
