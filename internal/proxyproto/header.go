package proxyproto

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// header is what a parsed PROXY header means for the connection.
type header struct {
	size     int            // bytes the header takes on the wire
	src, dst netip.AddrPort // both invalid when the real addresses stay
}

// v1MaxLen is the longest v1 line, CRLF included: "PROXY UNKNOWN" with two
// full IPv6 addresses and ports (spec 2.1).
const v1MaxLen = 107

// readV1 reads and parses a v1 line; buf starts with v1Prefix. Bytes are
// checked as they arrive, so garbage fails at once instead of after 107
// bytes or the timeout.
func (r *reader) readV1() (header, error) {
	for i := 0; ; i++ {
		if i == v1MaxLen {
			return header{}, fmt.Errorf("%w: v1 line without CRLF in its first %d bytes", ErrInvalidHeader, v1MaxLen)
		}
		if err := r.atLeast(i+1, version1); err != nil {
			return header{}, err
		}
		ch := r.buf[i]
		if i > 0 && r.buf[i-1] == '\r' && ch != '\n' {
			return header{}, fmt.Errorf("%w: v1 line has a CR without LF", ErrInvalidHeader)
		}
		switch {
		case ch == '\n':
			if r.buf[i-1] != '\r' { // i > 0: buf starts with the prefix
				return header{}, fmt.Errorf("%w: v1 line ends in a bare LF", ErrInvalidHeader)
			}
			h, err := parseV1(string(r.buf[:i-1]))
			h.size = i + 1
			return h, err
		case ch == '\r':
		case ch < ' ' || ch > '~':
			return header{}, fmt.Errorf("%w: v1 line has byte %#02x", ErrInvalidHeader, ch)
		}
	}
}

// parseV1 parses a v1 line without its CRLF:
// "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443".
func parseV1(line string) (header, error) {
	proto, rest, _ := strings.Cut(line[len(v1Prefix):], " ")
	var want func(netip.Addr) bool
	switch proto {
	case "UNKNOWN":
		// The rest of the line, if any, must be ignored (spec 2.1).
		return header{}, nil
	case "TCP4":
		want = netip.Addr.Is4
	case "TCP6":
		want = netip.Addr.Is6
	default:
		return header{}, fmt.Errorf("%w: v1 protocol %q, want TCP4, TCP6 or UNKNOWN", ErrInvalidHeader, proto)
	}
	var f [4]string // source, destination, source port, destination port
	for i := range f {
		var ok bool
		f[i], rest, ok = strings.Cut(rest, " ")
		if ok != (i < len(f)-1) {
			return header{}, fmt.Errorf("%w: v1 %s line has other than 6 single-space separated fields", ErrInvalidHeader, proto)
		}
	}
	src, err := v1Addr(f[0], want, proto, "source")
	if err != nil {
		return header{}, err
	}
	dst, err := v1Addr(f[1], want, proto, "destination")
	if err != nil {
		return header{}, err
	}
	sport, err := v1Port(f[2], "source")
	if err != nil {
		return header{}, err
	}
	dport, err := v1Port(f[3], "destination")
	if err != nil {
		return header{}, err
	}
	return header{src: netip.AddrPortFrom(src, sport), dst: netip.AddrPortFrom(dst, dport)}, nil
}

// v1Addr parses an address of the family want checks. netip already
// refuses IPv4 leading zeros, which the spec forbids.
func v1Addr(s string, want func(netip.Addr) bool, proto, which string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: v1 %s address: %w", ErrInvalidHeader, which, err)
	}
	if !want(a) || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: v1 %s address %q is not a %s address", ErrInvalidHeader, which, s, proto)
	}
	return a, nil
}

// v1Port parses a decimal port in 0-65535 without leading zeros (spec 2.1:
// they could be read as octal).
func v1Port(s, which string) (uint16, error) {
	if s == "" || len(s) > 5 || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: v1 %s port %q", ErrInvalidHeader, which, s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: v1 %s port %q", ErrInvalidHeader, which, s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > 0xffff {
		return 0, fmt.Errorf("%w: v1 %s port %q out of range", ErrInvalidHeader, which, s)
	}
	return uint16(n), nil
}

// Version 2 field values (spec 2.2).
const (
	v2FixedLen = 16 // signature, version and command, family, length

	cmdLocal = 0x0
	cmdProxy = 0x1

	afUnspec = 0x0
	afInet   = 0x1
	afInet6  = 0x2
	afUnix   = 0x3

	protoUnspec = 0x0
	protoStream = 0x1
	protoDgram  = 0x2

	// v2MaxPayload caps the length field: AF_UNIX addresses (the largest)
	// and 4KB of TLVs. Real balancers send well under 1KB; the spec's
	// 64KB would let a header pin that much memory per connection.
	v2MaxPayload = 216 + 4096
)

// v2Fixed is the 16-byte start of a v2 header after the signature checks.
type v2Fixed struct {
	cmd, af, proto byte
	len            int // bytes after the fixed part: addresses and TLVs
}

// readV2 reads and parses a v2 header; buf starts with v2Sig. The fixed
// part is checked before the rest is waited for.
func (r *reader) readV2() (header, error) {
	if err := r.atLeast(v2FixedLen, version2); err != nil {
		return header{}, err
	}
	f, err := parseV2Fixed(r.buf[:v2FixedLen])
	if err != nil {
		return header{}, err
	}
	size := v2FixedLen + f.len
	if size > len(r.buf) {
		// Exactly the header: nothing past it is read, and the larger
		// buffer is dropped with the reader.
		buf := make([]byte, size)
		copy(buf, r.buf[:r.n])
		r.buf = buf
	}
	if err := r.atLeast(size, version2); err != nil {
		return header{}, err
	}
	h, err := parseV2(f, r.buf[v2FixedLen:size])
	h.size = size
	return h, err
}

// parseV2Fixed checks the version, command, family and length of b, the
// first 16 bytes of a v2 header.
func parseV2Fixed(b []byte) (v2Fixed, error) {
	if v := b[12] >> 4; v != 2 {
		return v2Fixed{}, fmt.Errorf("%w: v2 signature with version %d", ErrInvalidHeader, v)
	}
	f := v2Fixed{
		cmd:   b[12] & 0x0f,
		af:    b[13] >> 4,
		proto: b[13] & 0x0f,
		len:   int(binary.BigEndian.Uint16(b[14:16])),
	}
	if f.cmd != cmdLocal && f.cmd != cmdProxy {
		return v2Fixed{}, fmt.Errorf("%w: v2 command %#x", ErrInvalidHeader, f.cmd)
	}
	if f.len > v2MaxPayload {
		return v2Fixed{}, fmt.Errorf("%w: v2 length %d, limit %d", ErrInvalidHeader, f.len, v2MaxPayload)
	}
	if f.cmd == cmdLocal {
		return f, nil // the family is ignored (spec 2.2)
	}
	if f.af > afUnix || f.proto > protoDgram {
		return v2Fixed{}, fmt.Errorf("%w: v2 family and protocol %#02x", ErrInvalidHeader, b[13])
	}
	if need := v2AddrLen(f.af, f.proto); f.len < need {
		return v2Fixed{}, fmt.Errorf("%w: v2 length %d, family and protocol %#02x need %d", ErrInvalidHeader, f.len, b[13], need)
	}
	return f, nil
}

// v2AddrLen is the size of the address block of a family and protocol,
// zero when the block is unspecified and to be ignored.
func v2AddrLen(af, proto byte) int {
	if proto == protoUnspec {
		return 0
	}
	switch af {
	case afInet:
		return 2*4 + 2*2
	case afInet6:
		return 2*16 + 2*2
	case afUnix:
		return 2 * 108
	}
	return 0
}

// parseV2 parses p, the addresses and TLVs after the fixed part f.
func parseV2(f v2Fixed, p []byte) (header, error) {
	if f.cmd == cmdLocal {
		// A balancer's health check: the real endpoints, and the block,
		// whatever it holds, discarded (spec 2.2).
		return header{}, nil
	}
	n := v2AddrLen(f.af, f.proto)
	if n == 0 {
		return header{}, nil // AF_UNSPEC or UNSPEC: ignore the addresses
	}
	if err := checkTLVs(p[n:]); err != nil {
		return header{}, err
	}
	if f.proto != protoStream {
		return header{}, nil // DGRAM on a stream connection: keep the real ones
	}
	switch f.af {
	case afInet:
		return header{
			src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[0:4])), binary.BigEndian.Uint16(p[8:10])),
			dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[4:8])), binary.BigEndian.Uint16(p[10:12])),
		}, nil
	case afInet6:
		return header{
			src: netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[0:16])), binary.BigEndian.Uint16(p[32:34])),
			dst: netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[16:32])), binary.BigEndian.Uint16(p[34:36])),
		}, nil
	}
	return header{}, nil // AF_UNIX: no IP to report
}

// checkTLVs checks that b is a sequence of type, 16-bit length, value
// (spec 2.2.1). Values are not interpreted, but a TLV that overruns the
// header means the sender and this parser disagree on where the
// application bytes start.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: v2 TLVs end in %d stray bytes", ErrInvalidHeader, len(b))
		}
		n := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if n > len(b) {
			return fmt.Errorf("%w: v2 TLV type %#02x of %d bytes overruns the header by %d", ErrInvalidHeader, b[0], n, n-len(b))
		}
		b = b[n:]
	}
	return nil
}
