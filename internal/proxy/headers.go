package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/httpwire"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1, plus the
// legacy ones proxies still see. They describe one connection and must never
// be forwarded (RFC 9110 7.6.1: "a proxy MUST remove ...").
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection", // non-standard, sent by old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te", // canonicalised "TE"; "TE: trailers" is re-added for gRPC below
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop deletes the hop-by-hop headers and every header named in
// Connection (RFC 9110 7.6.1). It runs on requests before they go upstream
// and on responses before they go to the client.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for sf := range strings.SplitSeq(v, ",") {
			if sf = httpwire.TrimOWS(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// upgradeType returns the protocol a request asks to upgrade to ("" when it
// does not). h2c is never honoured: it would let a client smuggle HTTP/2
// past the proxy's HTTP/1 parsing (SPEC section 5).
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	up := h.Get("Upgrade")
	if strings.EqualFold(up, "h2c") {
		return ""
	}
	return up
}

// copyRequestHeader builds the header map sent upstream: a copy of the
// client's, without hop-by-hop headers, with "TE: trailers" kept when the
// client sent it (gRPC requires it end to end) and with the Upgrade pair
// restored for an upgrade request.
func copyRequestHeader(in http.Header, upgrade string) http.Header {
	// One allocation for the map, one for all value slices: the values are
	// shared with the client's header, which nobody mutates afterwards.
	out := make(http.Header, len(in)+4)
	for k, vv := range in {
		out[k] = vv
	}
	teTrailers := httpguts.HeaderValuesContainsToken(in["Te"], "trailers")
	removeHopByHop(out)
	if teTrailers {
		out["Te"] = []string{"trailers"}
	}
	if upgrade != "" {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upgrade}
	}
	return out
}

// setForwarded sets X-Forwarded-For, -Proto and -Host and Via on the
// outgoing header. X-Forwarded-For is appended to only when the peer is a
// trusted proxy; from anyone else a client-supplied value is a spoofing
// attempt and is replaced. The same goes for X-Forwarded-Proto and -Host.
func setForwarded(out http.Header, peer netip.Addr, trusted bool, proto, host, via string) {
	peerStr := peer.String()
	if prior := out["X-Forwarded-For"]; trusted && len(prior) > 0 {
		out["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + peerStr}
	} else {
		out["X-Forwarded-For"] = []string{peerStr}
	}
	if !trusted || len(out["X-Forwarded-Proto"]) == 0 {
		out["X-Forwarded-Proto"] = []string{proto}
	}
	if !trusted || len(out["X-Forwarded-Host"]) == 0 {
		out["X-Forwarded-Host"] = []string{host}
	}
	if via == "" {
		return
	}
	if prior := out["Via"]; len(prior) > 0 {
		out["Via"] = []string{strings.Join(prior, ", ") + ", " + via}
	} else {
		out["Via"] = []string{via}
	}
}

// isTrusted reports whether addr falls in one of the trusted prefixes.
func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientIP returns the address the access log and client_ip hashing use:
// the peer, or, when the peer is a trusted proxy, the right-most address in
// X-Forwarded-For that is not itself trusted (the first hop we cannot
// vouch for; left-most entries are client-controlled).
func clientIP(peer netip.Addr, trustedPeer bool, xff []string, trusted []netip.Prefix) netip.Addr {
	if !trustedPeer || len(xff) == 0 {
		return peer
	}
	for i := len(xff) - 1; i >= 0; i-- {
		parts := xff[i]
		for parts != "" {
			j := strings.LastIndexByte(parts, ',')
			item := httpwire.TrimOWS(parts[j+1:])
			parts = parts[:max(j, 0)]
			if j < 0 {
				parts = ""
			}
			a, err := netip.ParseAddr(item)
			if err != nil {
				return peer
			}
			if !isTrusted(a, trusted) {
				return a
			}
		}
	}
	return peer
}

// peerAddr parses a RemoteAddr ("ip:port") without allocating.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// setClientCert sets X-Forwarded-Client-Cert (the header Envoy defined) to
// the verified client certificate of an mTLS connection:
// Hash=<hex SHA-256 of the DER>;Subject="<RFC 2253 subject>", plus URI=
// and DNS= for each SAN, so upstreams can authorise by the identity the
// proxy checked. Without a verified certificate the header is removed,
// unless the peer is a trusted proxy that did the checking itself: from
// anyone else it would be a forged identity.
func setClientCert(out http.Header, cs *tls.ConnectionState, trusted bool) {
	leaf := certs.VerifiedLeaf(cs)
	if leaf == nil {
		if !trusted {
			delete(out, "X-Forwarded-Client-Cert")
		}
		return
	}
	sum := sha256.Sum256(leaf.Raw)
	var b strings.Builder
	b.WriteString("Hash=")
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteString(`;Subject="`)
	b.WriteString(strings.ReplaceAll(leaf.Subject.String(), `"`, `\"`))
	b.WriteByte('"')
	for _, u := range leaf.URIs {
		b.WriteString(";URI=")
		b.WriteString(u.String())
	}
	for _, d := range leaf.DNSNames {
		b.WriteString(";DNS=")
		b.WriteString(d)
	}
	out["X-Forwarded-Client-Cert"] = []string{b.String()}
}
