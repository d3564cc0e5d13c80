package config

// StageType names a middleware stage.
type StageType string

// Middleware stage types.
const (
	// StageRequestID keeps a valid incoming X-Request-Id or generates one.
	StageRequestID StageType = "request_id"
	// StageAuth validates JWT bearer tokens (StageConfig.JWT).
	StageAuth StageType = "auth"
	// StageRateLimit applies the rate_limit of the policy in PolicyRef.
	StageRateLimit StageType = "rate_limit"
	// StageHeaderTransform adds and removes request/response headers.
	StageHeaderTransform StageType = "header_transform"
	// StagePlugin calls the plugin in PluginRef.
	StagePlugin StageType = "plugin"
	// StageTracing opens a span for the rest of the chain.
	StageTracing StageType = "tracing"
	// StageAccessLog marks where the access log record is taken.
	StageAccessLog StageType = "access_log"
)

// Chain is a named, ordered list of middleware stages, referenced by
// Route.Middleware. Not supported yet in this release.
type Chain struct {
	// ID is unique among chains, [A-Za-z0-9_.-]+. Required.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Stages run in order on the request and in reverse on the response.
	// Required, at least one.
	Stages []Stage `json:"stages,omitempty" yaml:"stages,omitempty"`
}

// Stage is one middleware stage. Which fields apply depends on Type.
type Stage struct {
	// Type is the stage kind. Required.
	Type StageType `json:"type,omitempty" yaml:"type,omitempty"`
	// Config carries the stage's settings: jwt for auth; add, remove,
	// response_add, response_remove for header_transform; nil for the
	// other types.
	Config *StageConfig `json:"config,omitempty" yaml:"config,omitempty"`
	// PolicyRef is the id of a policy with a rate_limit; required for
	// rate_limit stages only.
	PolicyRef string `json:"policy_ref,omitempty" yaml:"policy_ref,omitempty"`
	// PluginRef is the id of a plugin; required for plugin stages only.
	PluginRef string `json:"plugin_ref,omitempty" yaml:"plugin_ref,omitempty"`
}

// StageConfig is the union of the per-type stage settings; Validate
// rejects keys that do not belong to the stage's type.
type StageConfig struct {
	// JWT configures an auth stage. Required for auth.
	JWT *JWT `json:"jwt,omitempty" yaml:"jwt,omitempty"`
	// Add sets request headers (header_transform).
	Add map[string]string `json:"add,omitempty" yaml:"add,omitempty"`
	// Remove deletes request headers (header_transform).
	Remove []string `json:"remove,omitempty" yaml:"remove,omitempty"`
	// ResponseAdd sets response headers (header_transform).
	ResponseAdd map[string]string `json:"response_add,omitempty" yaml:"response_add,omitempty"`
	// ResponseRemove deletes response headers (header_transform).
	ResponseRemove []string `json:"response_remove,omitempty" yaml:"response_remove,omitempty"`
}

// JWT validates bearer tokens.
type JWT struct {
	// Issuer must equal the token's iss claim; empty means not checked.
	Issuer string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	// Audience must be in the token's aud claim; empty means not checked.
	Audience string `json:"audience,omitempty" yaml:"audience,omitempty"`
	// JWKSURL is where signing keys are fetched; exactly one of JWKSURL and
	// JWKSFile.
	JWKSURL string `json:"jwks_url,omitempty" yaml:"jwks_url,omitempty"`
	// JWKSFile is a local key set; exactly one of JWKSURL and JWKSFile.
	JWKSFile string `json:"jwks_file,omitempty" yaml:"jwks_file,omitempty"`
	// Algorithms are the accepted signature algorithms (RS256/384/512,
	// PS256/384/512, ES256/384/512, EdDSA). Empty means the default
	// [RS256, ES256, EdDSA].
	Algorithms []string `json:"algorithms,omitempty" yaml:"algorithms,omitempty"`
	// ForwardClaims copies claims to upstream request headers (claim ->
	// header). Empty means none.
	ForwardClaims map[string]string `json:"forward_claims,omitempty" yaml:"forward_claims,omitempty"`
}

// PluginType names how a plugin runs.
type PluginType string

// Plugin types.
const (
	// PluginExternalGRPC calls the Filter service at Plugin.Address.
	PluginExternalGRPC PluginType = "external_grpc"
	// PluginBuiltin runs the compiled-in plugin called Plugin.Name.
	PluginBuiltin PluginType = "builtin"
)

// FailMode says what happens when a plugin fails or times out.
type FailMode string

// Fail modes.
const (
	// FailClosed answers 503 plugin_timeout / plugin_unavailable.
	FailClosed FailMode = "closed"
	// FailOpen continues as if the plugin had allowed the request.
	FailOpen FailMode = "open"
)

// Plugin is a filter referenced by plugin stages. Not supported yet in this
// release.
type Plugin struct {
	// ID is unique among plugins, [A-Za-z0-9_.-]+. Required.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Type is external_grpc or builtin. Required.
	Type PluginType `json:"type,omitempty" yaml:"type,omitempty"`
	// Address is host:port of the gRPC service; required for
	// external_grpc only.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Name is the builtin plugin's name; required for builtin only.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Timeout bounds each plugin call. Zero means the default, 200ms (as
	// Envoy's ext_authz).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// FailMode is closed or open. Empty means the default, closed.
	FailMode FailMode `json:"fail_mode,omitempty" yaml:"fail_mode,omitempty"`
}

// Cache configures response caching for one route. Zero fields get the
// defaults named on each field. Not supported yet in this release.
type Cache struct {
	// Route is the id of the cached route; at most one entry per route.
	// Required.
	Route string `json:"route,omitempty" yaml:"route,omitempty"`
	// Enabled turns the cache on. Nil means the default, true (the entry's
	// presence is the intent); false keeps the entry but bypasses it.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// TTL is the freshness used when the upstream gives none; zero means
	// such responses are not cached.
	TTL Duration `json:"ttl,omitempty" yaml:"ttl,omitempty"`
	// VaryHeaders are request headers added to the cache key, on top of
	// the response's Vary.
	VaryHeaders []string `json:"vary_headers,omitempty" yaml:"vary_headers,omitempty"`
	// MaxSize bounds the route's store (LRU). Zero means the default, 10MB.
	MaxSize Size `json:"max_size,omitempty" yaml:"max_size,omitempty"`
	// MaxObjectSize bounds one cached response; larger ones stream through
	// uncached. Must not exceed MaxSize. Zero means the default, 1MB.
	MaxObjectSize Size `json:"max_object_size,omitempty" yaml:"max_object_size,omitempty"`
	// AuthAware caches requests with Authorization or Cookie per
	// credential, never shared. Nil means the default, true.
	AuthAware *bool `json:"auth_aware,omitempty" yaml:"auth_aware,omitempty"`
	// Coalesce makes concurrent misses for one key wait for a single
	// upstream fetch. Default false.
	Coalesce bool `json:"coalesce,omitempty" yaml:"coalesce,omitempty"`
	// CoalesceTimeout bounds the wait of coalesced requests. Zero means
	// the default, 5s.
	CoalesceTimeout Duration `json:"coalesce_timeout,omitempty" yaml:"coalesce_timeout,omitempty"`
}
