package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// Special-purpose ranges Go's netip has no predicate for.
var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")      // "this network" (RFC 791)
	sharedCGNAT  = netip.MustParsePrefix("100.64.0.0/10")  // carrier-grade NAT (RFC 6598)
	broadcast    = netip.MustParseAddr("255.255.255.255")  // limited broadcast
	siteLocal    = netip.MustParsePrefix("fec0::/10")      // deprecated site-local (RFC 3879)
	v4Compatible = netip.MustParsePrefix("::/96")          // deprecated IPv4-compatible (RFC 4291)
	nat64        = netip.MustParsePrefix("64:ff9b::/96")   // well-known NAT64 prefix (RFC 6052)
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	sixToFour    = netip.MustParsePrefix("2002::/16")      // 6to4 (RFC 3056)
	teredo       = netip.MustParsePrefix("2001::/32")      // Teredo (RFC 4380)
)

// Restricted says why an address is not for webhooks, or "" when it is a
// public address. Loopback, private (RFC 1918, fc00::/7), link-local
// (169.254.0.0/16, which holds cloud metadata services, and fe80::/10),
// unspecified, multicast, broadcast, "this network", carrier-grade NAT
// (100.64.0.0/10) and site-local addresses are restricted, and so are IPv6
// addresses that carry a restricted IPv4 address (IPv4-mapped and
// -compatible, NAT64, 6to4) or that tunnel to an IPv4 address this check
// cannot see (Teredo).
func Restricted(ip netip.Addr) string {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip == broadcast:
		return "broadcast"
	case thisNetwork.Contains(ip):
		return `"this network"`
	case sharedCGNAT.Contains(ip):
		return "carrier-grade NAT"
	case siteLocal.Contains(ip):
		return "site-local"
	case teredo.Contains(ip):
		return "Teredo tunnel"
	}
	if ip.Is6() {
		b := ip.As16()
		var inner netip.Addr
		switch {
		case v4Compatible.Contains(ip), nat64.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[12:16]))
		case nat64Local.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if inner.IsValid() {
			if kind := Restricted(inner); kind != "" {
				return kind + " (embedded in IPv6)"
			}
		}
	}
	return ""
}

// restrictedError says that a webhook may not reach an address.
func restrictedError(ip netip.Addr, kind string) string {
	return fmt.Sprintf("%s is a %s address: webhooks may not reach loopback, private or link-local addresses "+
		"(the global option webhook_allow_private allows it)", ip, kind)
}

// Resolver looks up the addresses of a host name; *net.Resolver does.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// lookupTimeout bounds the resolution of a webhook's host when it is saved.
const lookupTimeout = 5 * time.Second

// CheckURL judges a webhook URL when it is saved: its shape
// (store.ParseWebhookURL), and, unless allowPrivate, every address its
// host resolves to now (none may be Restricted). A host that does not
// resolve is refused too: what it would reach cannot be judged. The
// answer is a *store.FieldError naming url. Deliveries judge the address
// again when they connect (DNS may change).
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) (*url.URL, error) {
	u, err := store.ParseWebhookURL(raw)
	if err != nil || allowPrivate {
		return u, err
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		if r == nil {
			r = net.DefaultResolver
		}
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return nil, &store.FieldError{Field: "url", Message: fmt.Sprintf("host %q does not resolve, so where it leads cannot be checked", host)}
		}
	}
	for _, ip := range addrs {
		if kind := Restricted(ip); kind != "" {
			msg := restrictedError(ip, kind)
			if ip.String() != host {
				msg = fmt.Sprintf("host %q resolves to %s", host, msg)
			}
			return nil, &store.FieldError{Field: "url", Message: msg}
		}
	}
	return u, nil
}

// dialControl refuses connections to restricted addresses, unless allowed;
// it runs for every address the dialer tries, after DNS resolution.
func dialControl(allowPrivate func() bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate() {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook: cannot judge the address %q", address)
		}
		if kind := Restricted(ap.Addr()); kind != "" {
			return fmt.Errorf("refused: %s", restrictedError(ap.Addr(), kind))
		}
		return nil
	}
}
