// Package proxyproto reads the PROXY protocol header, version 1 (text) and
// version 2 (binary), that a load balancer in front of the proxy sends at
// the start of a connection to name the client it relays, so that
// client_ip, access logs and rate limits see the client and not the
// balancer. The reference is
// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt (cited below
// as "spec" with its section numbers).
//
// # Who may send a header
//
// Accept decides on the connection's real peer, c.RemoteAddr():
//
//   - A peer in the Trusted set (the balancers) may start the connection
//     with a header; the addresses it carries replace the connection's.
//     A trusted peer whose first bytes are not a header is served as is,
//     with its real address: balancers' health checks and operators often
//     connect directly.
//   - Any other peer that starts with a header is refused with
//     ErrUntrusted, because believing it would let anyone who can reach
//     the port choose the client_ip the proxy logs and rate-limits by.
//     Other bytes are served unchanged, with the real address.
//
// The spec (section 2) tells receivers not to guess whether a header is
// present, to stop untrusted parties from spoofing addresses; the trust
// set is what rules that out here, and guessing is cheap and exact: a
// header starts with "PROXY " or a 12-byte signature (spec 2.2) that no
// HTTP, HTTP/2 or TLS client sends.
//
// # Which addresses the connection reports
//
//   - v1 "TCP4"/"TCP6", and v2 command PROXY with family AF_INET or
//     AF_INET6 over STREAM: RemoteAddr is the header's source and
//     LocalAddr its destination, both *net.TCPAddr.
//   - v1 "UNKNOWN", v2 command LOCAL (a balancer's own health check), and
//     v2 families AF_UNSPEC and AF_UNIX or protocols UNSPEC and DGRAM: the
//     header is consumed and the real addresses are kept.
//   - v2 TLVs are skipped, after checking that they are well framed; none
//     is interpreted. Addresses and TLVs together may take 4312 bytes:
//     AF_UNIX addresses and 4KB (the spec allows 64KB).
//
// # Malformed headers
//
// Anything that starts like a header but is not exactly one is an error
// wrapping ErrInvalidHeader, and the caller closes the connection (spec
// 2.1: "Any sequence which does not exactly match the protocol must be
// discarded"): in v1 a line without CRLF in its first 107 bytes, a bare CR
// or LF, a control or non-ASCII byte, a protocol other than TCP4, TCP6 and
// UNKNOWN, other than exactly one space between fields, an address not of
// the announced family (or with an IPv6 zone or IPv4 leading zeros), a
// port out of 0-65535 or with a leading zero; in v2 a version other than
// 2, an unknown command, family or protocol, an address block shorter than
// its family needs, badly framed TLVs, or a length over 4312 bytes. A header
// cut short by the peer closing is malformed too.
//
// # Reading
//
// Accept reads incrementally and decides as soon as the bytes allow: a
// first segment "GET" is known not to be a header after one read, so a
// client that sends a short request and waits for the answer is never
// stalled. It reads the header from c through a small buffer; whatever
// that buffer holds past the header is returned first by the returned
// connection's Read, so no application byte is lost or reordered. The
// whole exchange is bounded by Accept's timeout.
package proxyproto
