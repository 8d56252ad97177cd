package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// Special-purpose ranges Go's netip has no predicate for.
var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")       // "this network" (RFC 791)
	sharedCGNAT  = netip.MustParsePrefix("100.64.0.0/10")   // carrier-grade NAT (RFC 6598)
	broadcast    = netip.MustParseAddr("255.255.255.255")   // limited broadcast
	siteLocal    = netip.MustParsePrefix("fec0::/10")       // deprecated site-local (RFC 3879)
	v4Compatible = netip.MustParsePrefix("::/96")           // deprecated IPv4-compatible (RFC 4291)
	nat64        = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 prefix (RFC 6052)
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48")  // local-use NAT64 (RFC 8215)
	sixToFour    = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056)
	teredo       = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380)
	translated   = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765)
)

// notGlobal are the special-purpose ranges of IANA's registries that are
// not globally reachable and have no predicate above: documentation,
// benchmarking, protocol assignments, reserved, discard and the like. A
// webhook has no business there, and a host may use them on its own
// interfaces (as test networks do).
var notGlobal = []netip.Prefix{
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast, deprecated (RFC 7526)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved (RFC 1112)
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking (RFC 5180)
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID, deprecated (RFC 4843)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),       // segment routing SIDs (RFC 9602)
}

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
	case isOwnAddress(ip):
		// The host's own addresses reach its services, public or not.
		return "this host's own"
	}
	for _, p := range notGlobal {
		if p.Contains(ip) {
			return "special-purpose (not globally reachable)"
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var inner netip.Addr
		switch {
		case v4Compatible.Contains(ip), nat64.Contains(ip), translated.Contains(ip):
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

// ownAddresses caches the addresses of this host's interfaces; they are
// read again after ownAddressesTTL.
var ownAddresses struct {
	sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

const ownAddressesTTL = 10 * time.Second

// isOwnAddress reports whether ip is assigned to one of this host's
// interfaces (a webhook to it reaches the host's own services).
func isOwnAddress(ip netip.Addr) bool {
	ownAddresses.Lock()
	defer ownAddresses.Unlock()
	if ownAddresses.addrs == nil || time.Since(ownAddresses.at) > ownAddressesTTL {
		addrs := map[netip.Addr]bool{}
		if ifaddrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range ifaddrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					addrs[p.Addr().Unmap().WithZone("")] = true
				}
			}
		}
		ownAddresses.addrs, ownAddresses.at = addrs, time.Now()
	}
	return ownAddresses.addrs[ip]
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
