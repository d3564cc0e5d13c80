// Package acme obtains and renews TLS certificates from an ACME CA (RFC
// 8555, Let's Encrypt by default) for the names of the config's
// tls.acme block, and serves them during TLS handshakes.
//
// A Manager outlives config snapshots: the runtime keeps Managers in a
// registry keyed by Options.Key, calls Run in a goroutine it owns and
// stops it by cancelling the context, while every snapshot that lists the
// same settings hands handshakes for Handles(name) to GetCertificate. The
// certificates, their keys and the ACME account live on disk in
// Options.Storage, so a restart serves the stored certificates without
// asking the CA again.
//
// The CA proves control of a name by connecting back to the proxy:
// tls-alpn-01 (RFC 8737) arrives on the TLS listener, whose
// tls.Config.NextProtos must list ALPNProto and whose GetCertificate must
// reach Manager.GetCertificate; http-01 arrives on the plaintext listener,
// whose handler must be wrapped with HTTPChallengeHandler. Wildcard names
// need dns-01, which needs a DNS provider this package does not have, so
// New rejects them.
//
// The ACME work itself is done by certmagic (github.com/caddyserver/
// certmagic), each Manager with its own certificate cache, never the
// package defaults.
package acme

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// ALPNProto is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737
// §6.2). The TLS listener must offer it, last in NextProtos so that no
// ordinary client gets it by preference, and close a connection that
// negotiated it right after the handshake: it only proves control of a
// name to the CA.
const ALPNProto = "acme-tls/1"

// Options configures a Manager. The zero value is not valid: Domains must
// name at least one host. Options is copied by New; later changes to it,
// or to the Domains slice, do not reach the Manager.
type Options struct {
	// Email is the contact address of the ACME account. Empty means no
	// contact, unless certmagic finds one: it takes the address the
	// first Manager of the process used (certmagic keeps that in a
	// package variable), else the newest account in Storage. An account
	// without contact works; Let's Encrypt has sent no expiry mail since
	// 2025 anyway.
	Email string

	// DirectoryURL is the ACME directory of the CA, which must be https.
	// Empty means Let's Encrypt production.
	DirectoryURL string

	// Domains are the exact host names to manage, compared without case.
	// Wildcards ("*.example.com") are rejected: they need the dns-01
	// challenge and there is no DNS provider.
	Domains []string

	// Storage is the directory holding certificates, keys and the ACME
	// account. Empty means $XDG_DATA_HOME/keel/acme, or
	// $HOME/.local/share/keel/acme without XDG_DATA_HOME (certmagic's
	// own convention); New fails when neither variable is set. A relative
	// path is made absolute against the working directory at New. Two
	// Managers (also in two processes) may share it: certmagic locks
	// each name in it while obtaining.
	Storage string

	// OnDemand defers obtaining a certificate to the first handshake
	// that asks for its name, which then waits for it (a few seconds
	// with Let's Encrypt). Names outside Domains never start an
	// issuance. Off (the default), Run obtains every name at start.
	OnDemand bool

	// TLSPort is the port of the TLS listener that answers tls-alpn-01
	// through GetCertificate, as the CA reaches it after any port
	// forwarding. Zero means 443. Certmagic checks that something
	// listens there and, if nothing does, serves the challenge on that
	// port itself while it lasts.
	TLSPort int

	// HTTPPort is the port of the plaintext listener whose handler is
	// wrapped with HTTPChallengeHandler, as the CA reaches it (normally
	// 80). Zero disables http-01, so validation uses tls-alpn-01 only:
	// a challenge the proxy cannot answer would count as a failed
	// validation against the CA's rate limits.
	HTTPPort int

	// CARoots, when not nil, replaces the system roots for verifying
	// the ACME directory's HTTPS certificate. It is meant for private
	// ACME servers and tests; the proxy leaves it nil.
	CARoots *x509.CertPool

	// RenewCheckInterval is how often managed certificates are checked
	// for renewal; zero means certmagic's default (10 minutes). Tests
	// shorten it. It also sets certmagic's emergency margin: a
	// certificate with less than five intervals of life left is renewed
	// whatever its lifetime, so with the default a certificate shorter
	// than about 50 minutes would be renewed at every check. Not a
	// config-file setting.
	RenewCheckInterval time.Duration

	// Logger receives certmagic's logs (its info as Info, its warnings
	// and errors as Warn, its debug dropped) and the Manager's own:
	// certificates becoming ready at Info, failures to obtain at Error.
	// Nil discards them.
	Logger *slog.Logger
}

// Manager obtains, stores, renews and serves the certificates of one
// Options. Build it with New; the zero value is not usable. Run it once
// with Run. Handles, GetCertificate and HTTPChallengeHandler may be
// called concurrently from any goroutine, before, during and after Run.
type Manager struct {
	email     string
	directory string
	storage   string
	domains   []string            // normalised and sorted
	names     map[string]struct{} // the same, for Handles
	onDemand  bool
	tlsPort   int
	httpPort  int
	renewTick time.Duration // zero: certmagic's default
	roots     *x509.CertPool
	log       *slog.Logger

	started atomic.Bool
	cur     atomic.Pointer[active] // nil unless Run is serving
}

// New validates o and returns a Manager for it. It starts nothing and
// touches no file: Run does.
func New(o Options) (*Manager, error) {
	domains, err := normaliseDomains(o.Domains)
	if err != nil {
		return nil, err
	}
	if o.Email != "" {
		if a, err := mail.ParseAddress(o.Email); err != nil || a.Address != o.Email {
			return nil, fmt.Errorf("acme: email %q: not a plain address", o.Email)
		}
	}
	dir, err := directoryURL(o.DirectoryURL)
	if err != nil {
		return nil, err
	}
	storage, err := storageDir(o.Storage)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		port int
	}{{"tls_port", o.TLSPort}, {"http_port", o.HTTPPort}} {
		if p.port < 0 || p.port > 65535 {
			return nil, fmt.Errorf("acme: %s %d: out of range", p.name, p.port)
		}
	}
	if o.RenewCheckInterval < 0 {
		return nil, fmt.Errorf("acme: renew check interval %v: negative", o.RenewCheckInterval)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		email: o.Email, directory: dir, storage: storage, domains: domains,
		names: make(map[string]struct{}, len(domains)), onDemand: o.OnDemand,
		tlsPort: o.TLSPort, httpPort: o.HTTPPort, renewTick: o.RenewCheckInterval,
		roots: o.CARoots, log: log,
	}
	for _, d := range domains {
		m.names[d] = struct{}{}
	}
	return m, nil
}

// Key returns a string that is equal for two Options exactly when New
// would build Managers that do the same thing: case and order of Domains
// and the spelling of defaults do not matter. Logger, CARoots and
// RenewCheckInterval are not part of it: they are set by code (tests, a
// private CA), never by the config file, so the runtime's Options never
// differ in them, and none of them changes which certificates are
// obtained or where they are stored. The runtime uses it as the registry
// key, so a config swap that keeps the settings keeps the Manager (and
// its certificates in memory). Key does not validate: New does.
func (o Options) Key() string {
	domains := make([]string, len(o.Domains))
	for i, d := range o.Domains {
		domains[i] = strings.ToLower(d)
	}
	slices.Sort(domains)
	domains = slices.Compact(domains)
	dir, _ := directoryURL(o.DirectoryURL)
	storage, _ := storageDir(o.Storage)
	tlsPort := o.TLSPort
	if tlsPort == 0 {
		tlsPort = certmagic.TLSALPNChallengePort
	}
	// Quoting keeps a field from running into the next one.
	return strings.Join([]string{
		strconv.Quote(o.Email), strconv.Quote(dir), strconv.Quote(storage),
		strconv.Quote(strings.Join(domains, ",")), strconv.FormatBool(o.OnDemand),
		strconv.Itoa(tlsPort), strconv.Itoa(o.HTTPPort),
	}, " ")
}

// Handles reports whether serverName (an SNI value, compared without
// case) is one of the Manager's Domains.
func (m *Manager) Handles(serverName string) bool {
	_, ok := m.names[strings.ToLower(serverName)]
	return ok
}

// normaliseDomains lowercases, checks and sorts the names; a duplicate is
// an error because it is a config mistake.
func normaliseDomains(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("acme: domains: none given")
	}
	out := make([]string, 0, len(in))
	for _, d := range in {
		name := strings.ToLower(d)
		if err := checkDomain(name); err != nil {
			return nil, fmt.Errorf("acme: domain %q: %w", d, err)
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("acme: domain %q: listed twice", d)
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// checkDomain accepts an LDH host name (RFC 1123 §2.1; internationalised
// names in their xn-- form).
func checkDomain(name string) error {
	switch {
	case strings.Contains(name, "*"):
		return errors.New("wildcard names need the dns-01 challenge, and no DNS provider is configured")
	case net.ParseIP(name) != nil:
		return errors.New("IP addresses are not supported")
	case name == "":
		return errors.New("empty name")
	case len(name) > 253:
		return errors.New("longer than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("each dot-separated label needs 1 to 63 characters (no trailing dot)")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("a label starts or ends with '-'")
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("character %q not allowed (letters, digits, '-'; xn-- for international names)", c)
			}
		}
	}
	return nil
}

// directoryURL applies the default and requires https (RFC 8555 §6.1).
func directoryURL(s string) (string, error) {
	if s == "" {
		return certmagic.LetsEncryptProductionCA, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("acme: directory_url: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("acme: directory_url %q: want an https:// URL", s)
	}
	return s, nil
}

// storageDir applies the default and makes the path absolute, so that a
// later change of working directory cannot move the certificates.
func storageDir(s string) (string, error) {
	if s == "" {
		switch base := os.Getenv("XDG_DATA_HOME"); {
		case base != "":
			s = filepath.Join(base, "keel", "acme")
		case os.Getenv("HOME") != "":
			s = filepath.Join(os.Getenv("HOME"), ".local", "share", "keel", "acme")
		default:
			return "", errors.New("acme: storage: empty, and neither XDG_DATA_HOME nor HOME is set to derive a default")
		}
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", fmt.Errorf("acme: storage: %w", err)
	}
	return abs, nil
}
