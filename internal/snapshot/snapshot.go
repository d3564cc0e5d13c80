// Package snapshot is the contract between the control plane and the data
// plane: an immutable, compiled view of one config version, and the Holder
// that publishes it with one atomic pointer.
//
// Every request loads the current Snapshot once, at its start, and makes all
// its decisions against it; an apply builds a whole new Snapshot off the hot
// path and swaps the pointer. Nothing reachable from a Snapshot is mutated
// after it is published, except runtime state owned by long-lived registries
// (upstream.State) that snapshots merely reference.
package snapshot

import (
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/proxyproto"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/upstream"
)

// Snapshot is one compiled config version. It is immutable once published;
// all fields may be read concurrently without locks.
type Snapshot struct {
	// Version is the content hash of the config it was built from; "" for
	// the empty snapshot the proxy starts with when it has no config.
	Version string
	// Label is the config's free-form "version" label, if any.
	Label string
	// BuiltAt is when the snapshot was compiled.
	BuiltAt time.Time

	// Router matches requests to routes. Never nil: the empty snapshot has
	// an empty table, which answers every request with 404 no_route.
	Router *router.Table[*Route]
	// Routes lists the routes in config order.
	Routes []*Route
	// Pools maps pool id to the pool view of this snapshot.
	Pools map[string]*upstream.Pool
	// PoolList lists the pools in config order.
	PoolList []*upstream.Pool

	// TLS selects the certificates of the TLS listeners by SNI and holds
	// the client-certificate policy; nil means no certificate at all
	// (every TLS handshake fails).
	TLS *certs.Store
	// FilesDigest hashes the contents of the files the config read when
	// compiled (certificates, keys, CA bundles, JWKS files): an apply of
	// the same config is not "unchanged" when they differ.
	FilesDigest string

	// ProxyProtocol, when non-nil, makes the TCP listeners read a PROXY
	// protocol header (v1 or v2) from the peers it trusts on each new
	// connection (server.proxy_protocol); nil reads none.
	ProxyProtocol *proxyproto.Trusted

	// TrustedProxies are the peers whose X-Forwarded-For is believed and
	// appended to; from any other peer it is replaced. Empty trusts no one.
	TrustedProxies []netip.Prefix
	// AccessLog reports whether access-log lines are written.
	AccessLog bool
	// Redactor decides what never reaches a log line. Nil redacts only the
	// always-secret headers.
	Redactor *obs.Redactor
	// MetricsDisabled turns the metrics endpoint off (404).
	MetricsDisabled bool
	// MetricsPath is where the admin (or metrics) listener serves metrics;
	// "" means "/metrics".
	MetricsPath string
	// MetricsToken, when set, is the bearer token the metrics endpoint
	// demands (metrics.require_token, read from metrics.token_env when the
	// snapshot was compiled). "" leaves the endpoint open.
	MetricsToken string

	// BreakerKeys and BudgetKeys are the runtime-registry keys of the
	// circuit breakers and retry budgets this snapshot's routes use; the
	// apply pipeline commits them after the swap.
	BreakerKeys, BudgetKeys []string
	// SplitKeys are the route ids with a traffic plan (canary split and
	// overload limiter in the runtime registries).
	SplitKeys []string
	// VerifierKeys are the digests of the JWT verifiers the chains use.
	VerifierKeys []string
	// RateLimitKeys name the rate limiters the routes and chains use.
	RateLimitKeys []string
	// RedisKeys are the Redis addresses global rate limits use.
	RedisKeys []string
	// ACMEKeys name the ACME managers the certificate store uses.
	ACMEKeys []string
}

// Route is one compiled route. Immutable once published.
type Route struct {
	// ID is the route's config id; it labels metrics and log lines.
	ID string
	// PoolID is the id of the route's default pool.
	PoolID string
	// Pool is the route's default pool in this snapshot.
	Pool *upstream.Pool
	// Policy is the route's policy; nil means none (no timeout beyond the
	// server's, no body limit, plaintext allowed).
	Policy *Policy
	// RequireMTLS answers 403 mtls_required unless the connection has a
	// verified client certificate.
	RequireMTLS bool
	// PolicyID and MiddlewareID name the config objects the route uses, for
	// explain and status output; "" when none.
	PolicyID, MiddlewareID string
	// RewritePrefix, when HasRewrite, replaces the matched path_prefix in the
	// path sent upstream.
	RewritePrefix string
	HasRewrite    bool
	// Metrics are the route's instruments with resolved labels. Nil records
	// nothing.
	Metrics *obs.RouteMetrics
	// Handler serves a request once it matched this route: the middleware
	// chain around the forwarder, composed at compile time. Never nil in a
	// published snapshot.
	Handler http.Handler
}

// Policy is the compiled form of a config policy: the per-route limits that
// exist so far.
type Policy struct {
	ID string
	// Timeout bounds the whole request, all attempts included; 0 means no
	// limit beyond the server's own timeouts.
	Timeout time.Duration
	// BodySizeLimit caps the request body in bytes (chunked bodies too);
	// 0 means unlimited.
	BodySizeLimit int64
	// RequireTLS rejects plaintext requests with 403 tls_required.
	RequireTLS bool
}

// Holder publishes the current Snapshot. The zero value holds nil; callers
// should Store an initial snapshot before serving. Load is wait-free and
// safe from any goroutine; Swap is serialised by the control plane (only
// the apply pipeline calls it).
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the current snapshot.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Swap publishes next and returns the snapshot it replaced (nil at first).
func (h *Holder) Swap(next *Snapshot) *Snapshot { return h.p.Swap(next) }
