package proxyproto

import (
	"net"
	"net/netip"
)

// Trusted is the set of peers allowed to send a PROXY header: the load
// balancers in front of the proxy. The zero value trusts nobody. A Trusted
// never changes after NewTrusted, so it may be shared and used
// concurrently; a new configuration builds a new one.
type Trusted struct {
	prefixes []netip.Prefix // masked, IPv4 ones in their 4-byte form
}

// NewTrusted returns the set of peers within prefixes, which it copies.
// IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) are stored as the IPv4
// prefixes they mean, and invalid prefixes match nothing. A nil or empty
// slice trusts nobody, like the zero Trusted.
func NewTrusted(prefixes []netip.Prefix) Trusted {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return Trusted{prefixes: out}
}

// Contains reports whether addr, a connection's peer, is trusted. An IPv4
// peer seen through a dual-stack listener (::ffff:192.0.2.1) matches IPv4
// prefixes; an IPv6 zone is ignored. A peer with no IP address (a pipe, a
// Unix socket) or a nil addr is never trusted.
func (t Trusted) Contains(addr net.Addr) bool {
	if len(t.prefixes) == 0 {
		return false
	}
	ip, ok := peerIP(addr)
	if !ok {
		return false
	}
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerIP returns addr's IP, unmapped and without zone, which is how
// prefixes are stored.
func peerIP(addr net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		var ok bool
		if ip, ok = netip.AddrFromSlice(a.IP); !ok {
			return netip.Addr{}, false
		}
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	return ip.Unmap().WithZone(""), true
}
