package compile

import (
	"fmt"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
)

// route builds one route: its policy, pool and the handler that serves it.
func route(rc *config.Route, s *snapshot.Snapshot, policies map[string]*snapshot.Policy, needsClientIP bool, m *obs.Metrics) (*snapshot.Route, error) {
	r := &snapshot.Route{ID: rc.ID, PoolID: rc.Pool, PolicyID: rc.Policy, MiddlewareID: rc.Middleware,
		RequireMTLS: rc.RequireMTLS}
	r.Pool = s.Pools[rc.Pool]
	if r.Pool == nil {
		return nil, fmt.Errorf("pool %q not found", rc.Pool)
	}
	if rc.Policy != "" {
		if r.Policy = policies[rc.Policy]; r.Policy == nil {
			return nil, fmt.Errorf("policy %q not found", rc.Policy)
		}
	}
	if rc.Rewrite != nil {
		r.HasRewrite, r.RewritePrefix = true, rc.Rewrite.PathPrefix
	}
	r.Metrics = m.ForRoute(rc.ID, rc.Pool)
	r.Handler = &proxy.Forwarder{
		Pool:           r.Pool,
		RewritePrefix:  r.RewritePrefix,
		HasRewrite:     r.HasRewrite,
		RewriteFrom:    rewriteFrom(rc),
		TrustedProxies: s.TrustedProxies,
		Via:            Via,
		NeedClientIP:   needsClientIP,
		RouteID:        rc.ID,
		Metrics:        m,
	}
	return r, nil
}

// policy compiles the parts of a policy that exist in this release.
func policy(pc *config.Policy) *snapshot.Policy {
	return &snapshot.Policy{
		ID:            pc.ID,
		Timeout:       pc.Timeout.Std(),
		BodySizeLimit: pc.BodySizeLimit.Bytes(),
		RequireTLS:    pc.RequireTLS,
	}
}

// rewriteFrom is the part of the path rewrite.path_prefix replaces on
// routes that match no prefix: the whole exact path, or the leading "/" of
// a route with no path matcher. Prefix routes use the matched prefix.
func rewriteFrom(rc *config.Route) string {
	if rc.Path != "" {
		return router.Normalize(rc.Path)
	}
	return "/"
}
