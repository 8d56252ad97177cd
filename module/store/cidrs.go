package store

import (
	"fmt"
	"net/netip"
	"strings"
)

// A user's allowed_cidrs: the networks its tokens may be used from (docs/admin-api.md).
// Stored as text in canonical form, so that what an admin reads back is
// exactly what every gateway enforces.

// ParseCIDR reads one entry of allowed_cidrs: a prefix such as 10.0.0.0/8
// or 2001:db8::/32, in any spelling netip accepts. It refuses what would
// not mean what it looks like:
//   - bits set past the prefix length (10.1.2.3/8 covers all of 10.0.0.0/8,
//     not one address: write 10.0.0.0/8, or 10.1.2.3/32);
//   - IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104): IPv4 clients are
//     matched against IPv4 entries, whichever way they reach the gateway,
//     so such an entry is written in its IPv4 form (10.0.0.0/8);
//   - a bare address (10.0.0.1): write 10.0.0.1/32.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if strings.Contains(s, "%") {
			return netip.Prefix{}, fmt.Errorf("%q names an interface zone: networks have none", s)
		}
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("%q is an address, not a network: write %s/%d for that one address", s, a.Unmap(), a.Unmap().BitLen())
		}
		return netip.Prefix{}, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or 2001:db8::/32", s)
	}
	// Shorter than 96 bits, a prefix of a mapped address is not within
	// ::ffff:0:0/96, and the check of its bits below says so.
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		v4 := netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped prefix: write it as %s", s, v4)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its prefix length: write %s for the network, or %s/%d for one address", s, m, p.Addr(), p.Addr().BitLen())
	}
	return p, nil
}

// maxCIDRLen bounds an entry's text, well above the longest prefix netip
// reads (an IPv6 address in full with an IPv4 tail, and /128), so that an
// error never echoes a long input.
const maxCIDRLen = 64

// canonicalCIDRs checks a user's allowed_cidrs and returns them in
// canonical text (2001:0DB8::/32 is 2001:db8::/32), in the order given; nil
// when the list is empty. Duplicates, once canonical, are refused.
func canonicalCIDRs(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if len(list) > MaxCIDRsOfUser {
		return nil, &FieldError{"allowed_cidrs", fmt.Sprintf("must list at most %d networks", MaxCIDRsOfUser)}
	}
	out := make([]string, 0, len(list))
	seen := make(map[netip.Prefix]bool, len(list))
	for _, s := range list {
		if len(s) > maxCIDRLen {
			return nil, &FieldError{"allowed_cidrs", fmt.Sprintf("entries must be networks such as 10.0.0.0/8, at most %d characters", maxCIDRLen)}
		}
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, &FieldError{"allowed_cidrs", err.Error()}
		}
		if seen[p] {
			return nil, &FieldError{"allowed_cidrs", fmt.Sprintf("%q is listed twice", s)}
		}
		seen[p] = true
		out = append(out, p.String())
	}
	return out, nil
}
