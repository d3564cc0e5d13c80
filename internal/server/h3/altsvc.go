package h3

import "strconv"

// altSvcMaxAge is how long, in seconds, a client may remember the
// announcement: a day, so a client whose UDP is blocked falls back to TCP
// and retries HTTP/3 at most daily, and a removed listener is forgotten
// within a day.
const altSvcMaxAge = 86400

// AltSvc returns the Alt-Svc field value (RFC 7838, RFC 9114 3.1.1) that
// announces an HTTP/3 listener on port of the same host, for the
// responses of the TLS listeners: AltSvc(8443) is `h3=":8443"; ma=86400`.
// It returns "" for a port outside 1-65535, so a caller can skip the
// field.
func AltSvc(port int) string {
	if port < 1 || port > 65535 {
		return ""
	}
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(altSvcMaxAge)
}
