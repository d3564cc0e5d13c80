package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp/syntax"
	"strconv"
	"strings"
)

// validID reports whether id is non-empty and only [A-Za-z0-9_.-].
func validID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isToken reports whether s is an RFC 9110 token (method and header field
// names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(s[i])) {
			return false
		}
	}
	return true
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits, '-' and '_' (seen in internal names), each 1-63 bytes
// and not starting or ending with '-', at most 253 bytes in all.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' && label[i] != '_' {
				return false
			}
		}
	}
	return true
}

// checkHostPort checks "host:port" with a DNS name or IP host (IPv6 in
// brackets) and a port 1-65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid address %q: port must be 1-65535", addr)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("invalid address %q: bad host %q", addr, host)
	}
	return nil
}

// splitScheme removes an http:// or https:// prefix (case-insensitive)
// from an endpoint address and returns the lower-case scheme, or "".
func splitScheme(addr string) (scheme, hostport string) {
	for _, s := range []string{"http", "https"} {
		if len(addr) > len(s)+3 && strings.EqualFold(addr[:len(s)+3], s+"://") {
			return s, addr[len(s)+3:]
		}
	}
	return "", addr
}

// keyForms lists which selector forms a key field accepts.
type keyForms struct {
	clientIP, route, header, cookie bool
}

// checkKey validates a selector such as "client_ip", "route",
// "header:X-User" or "cookie:session" against the allowed forms.
func checkKey(key string, allow keyForms) error {
	var want []string
	if allow.clientIP {
		want = append(want, "client_ip")
	}
	if allow.route {
		want = append(want, "route")
	}
	if allow.header {
		want = append(want, "header:NAME")
	}
	if allow.cookie {
		want = append(want, "cookie:NAME")
	}
	bad := fmt.Errorf("invalid key %q: want %s", key, strings.Join(want, " | "))
	kind, name, hasName := strings.Cut(key, ":")
	switch {
	case !hasName && kind == "client_ip" && allow.clientIP:
		return nil
	case !hasName && kind == "route" && allow.route:
		return nil
	case hasName && kind == "header" && allow.header && isToken(name):
		return nil
	case hasName && kind == "cookie" && allow.cookie && isToken(name):
		return nil
	}
	return bad
}

// errStatusRange explains the accepted expected_status forms.
var errStatusRange = errors.New(`want a status code such as "200" or an inclusive range such as "200-399", codes 100-599`)

// ParseStatusRange parses an expected-status value: a single code ("200")
// or an inclusive range ("200-399"), codes 100-599, low <= high.
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, errStatusRange
	}
	return lo, hi, nil
}

// retryConditions are the named retry_on conditions.
var retryConditions = map[string]bool{"connect_failure": true, "reset": true, "timeout": true}

// checkRetryOn accepts a named condition, a status code 100-599, or a
// status class "1xx".."5xx".
func checkRetryOn(s string) error {
	if retryConditions[s] {
		return nil
	}
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1:] == "xx" {
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 && len(s) == 3 {
		return nil
	}
	return fmt.Errorf("invalid retry condition %q: want connect_failure, reset, timeout, a status code (502) or a class (5xx)", s)
}

// checkCIDROrIP accepts "10.0.0.0/8", "fd00::/8", "192.0.2.1" or "::1".
func checkCIDROrIP(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return fmt.Errorf("invalid trusted proxy %q: want an IP address or CIDR", s)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

// checkRegex reports whether expr is a valid regular expression, with the
// error regexp.Compile would return. regexp.Compile fails exactly when
// parsing in Perl mode fails (compiling the parsed expression cannot), so
// validation parses only and leaves building the matcher to the router:
// a large config has hundreds of regexes.
func checkRegex(expr string) error {
	_, err := syntax.Parse(expr, syntax.Perl)
	return err
}
