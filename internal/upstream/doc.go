// Package upstream holds the proxy's view of its backends: pools of
// endpoints, the load balancers that pick among them, one HTTP transport per
// endpoint, and State, the long-lived registry that keeps that runtime state
// across config snapshots.
//
// The split follows SPEC section 1. A Pool is an immutable view compiled for
// one snapshot (its endpoints, weights and balancer); an Endpoint is a
// long-lived runtime entry (transport with its idle connections, in-flight
// counter, metrics handle) keyed by pool id, address, protocol, transport
// settings and TLS settings (with a fingerprint of the certificate files,
// which Build reads). State.Build hands out Pools that reuse the Endpoints
// whose key survived, so connection pools and counters outlive a config
// apply; State.Commit, called after the swap, drains and forgets what the
// active snapshot no longer references.
//
// Endpoint health (SPEC section 7) lives on the same long-lived entries:
// the active checks' verdict, passive and outlier ejections and their
// counters, so it survives every apply that keeps the endpoint. The proxy
// reports each attempt's outcome with Endpoint.Report and chooses with
// Pool.Select, which skips unhealthy and ejected endpoints and fails open
// at one request per second when none is left. Settings take effect at
// Commit, which also starts and stops the health goroutines (active
// checkers, one monitor per pool); State owns them and Close stops them.
// Nothing on the request path takes a lock.
//
// The package knows nothing of the config file format: the compile package
// fills PoolConfig from the parsed config.
package upstream
