package config

import (
	"math"
	"strings"
)

// Defaults, named once so that docs/CONFIG.md, the field comments and the
// code cannot drift apart silently (the tests check them against each
// other through ApplyDefaults).
const (
	defaultMaxHeaderBytes    = 64 << 10
	defaultMaxHeaderCount    = 100
	defaultMaxURLBytes       = 8 << 10
	defaultReadHeaderTimeout = Duration(10e9)
	defaultServerIdle        = Duration(60e9)
	defaultSlowClient        = Duration(30e9)

	defaultWeight          = 1
	defaultMaxIdle         = 256
	defaultTransportIdle   = Duration(90e9)
	defaultDialTimeout     = Duration(1e9)
	defaultMaxAttempts     = 2
	defaultBudgetPercent   = 20
	defaultBudgetBurst     = 10
	defaultBackoffBase     = Duration(25e6)
	defaultBackoffMax      = Duration(250e6)
	defaultMaxHedges       = 1
	defaultBreakerPercent  = 50
	defaultBreakerMin      = 20
	defaultBreakerOpen     = Duration(30e9)
	defaultBreakerWindow   = Duration(10e9)
	defaultHalfOpen        = 5
	defaultHealthInterval  = Duration(5e9)
	defaultHealthTimeout   = Duration(1e9)
	defaultHealthPath      = "/health"
	defaultExpectedStatus  = "200-399"
	defaultHealthy         = 2
	defaultUnhealthy       = 3
	defaultPassiveFailures = 5
	defaultEjection        = Duration(30e9)
	defaultOutlierFailures = 5
	defaultOutlierRate     = 50
	defaultOutlierInterval = Duration(10e9)
	defaultMaxEjection     = 50

	defaultBrakeWindow     = Duration(30e9)
	defaultBrakeMin        = 50
	defaultBrakeMultiplier = 2
	defaultQueueTimeout    = Duration(1e9)
	defaultPluginTimeout   = Duration(200e6)
	defaultCacheMaxSize    = 10 << 20
	defaultCacheMaxObject  = 1 << 20
	defaultCoalesceTimeout = Duration(5e9)

	defaultMetricsPath = "/metrics"
	defaultTokenEnv    = "METRICS_TOKEN"
	defaultSampleRatio = 0.01
	defaultDrainDelay  = Duration(10e9)
	defaultGracePeriod = Duration(30e9)
	defaultTLSVersion  = "1.2"
)

// ApplyDefaults fills every unset field that has a default (see each
// field's comment and docs/CONFIG.md) and normalises case where the schema
// is case-insensitive (methods upper-cased, retry_on lower-cased). It is
// idempotent and never removes information: an explicit value, including an
// explicit false or 0 held in a pointer field, is kept. It must not run
// concurrently with readers of c.
func (c *Config) ApplyDefaults() {
	c.Server.applyDefaults()
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
	for i := range c.Policies {
		c.Policies[i].applyDefaults()
	}
	for i := range c.Pools {
		c.Pools[i].applyDefaults()
	}
	for i := range c.TrafficManagement {
		c.TrafficManagement[i].applyDefaults()
	}
	for i := range c.Middleware {
		c.Middleware[i].applyDefaults()
	}
	for i := range c.Cache {
		c.Cache[i].applyDefaults()
	}
	for i := range c.Plugins {
		c.Plugins[i].applyDefaults()
	}
	if c.TLS != nil && c.TLS.MinVersion == "" {
		c.TLS.MinVersion = defaultTLSVersion
	}
	c.Logging.applyDefaults()
	c.Metrics.applyDefaults()
	if c.Tracing != nil && c.Tracing.SampleRatio == nil {
		c.Tracing.SampleRatio = ptr(defaultSampleRatio)
	}
	if c.Shutdown.DrainDelay == nil {
		c.Shutdown.DrainDelay = ptr(defaultDrainDelay)
	}
	setDefault(&c.Shutdown.GracePeriod, defaultGracePeriod)
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// setDefault sets *p to def when *p is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func (s *Server) applyDefaults() {
	setDefault(&s.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDefault(&s.MaxHeaderCount, defaultMaxHeaderCount)
	setDefault(&s.MaxURLBytes, defaultMaxURLBytes)
	setDefault(&s.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDefault(&s.IdleTimeout, defaultServerIdle)
	setDefault(&s.SlowClientTimeout, defaultSlowClient)
}

func (r *Route) applyDefaults() {
	for i, m := range r.Methods {
		r.Methods[i] = strings.ToUpper(m)
	}
}

func (p *Policy) applyDefaults() {
	if r := p.Retries; r != nil {
		setDefault(&r.MaxAttempts, defaultMaxAttempts)
		if r.BudgetPercent == nil {
			r.BudgetPercent = ptr(defaultBudgetPercent)
		}
		if r.BudgetBurst == nil {
			r.BudgetBurst = ptr(defaultBudgetBurst)
		}
		if r.IdempotentOnly == nil {
			r.IdempotentOnly = ptr(true)
		}
		if len(r.RetryOn) == 0 {
			r.RetryOn = []Scalar{"connect_failure", "reset", "503"}
		}
		for i, s := range r.RetryOn {
			r.RetryOn[i] = Scalar(strings.ToLower(string(s)))
		}
		setDefault(&r.Backoff.Base, defaultBackoffBase)
		setDefault(&r.Backoff.Max, defaultBackoffMax)
	}
	if h := p.Hedging; h != nil {
		setDefault(&h.MaxHedges, defaultMaxHedges)
	}
	if rl := p.RateLimit; rl != nil {
		if rl.Burst == 0 && rl.RequestsPerSecond > 0 {
			rl.Burst = int(max(1, math.Ceil(min(rl.RequestsPerSecond, math.MaxInt32))))
		}
		setDefault(&rl.Key, "client_ip")
		setDefault(&rl.Scope, ScopeLocal)
	}
	if p.CircuitBreaker != nil {
		p.CircuitBreaker.applyDefaults()
	}
}

func (b *CircuitBreaker) applyDefaults() {
	setDefault(&b.ErrorThresholdPercent, defaultBreakerPercent)
	setDefault(&b.MinRequests, defaultBreakerMin)
	setDefault(&b.OpenDuration, defaultBreakerOpen)
	setDefault(&b.Window, defaultBreakerWindow)
	setDefault(&b.HalfOpenRequests, defaultHalfOpen)
}

func (p *Pool) applyDefaults() {
	setDefault(&p.Balancer, BalancerRoundRobin)
	setDefault(&p.Protocol, ProtocolHTTP1)
	for i := range p.Endpoints {
		if p.Endpoints[i].Weight == nil {
			p.Endpoints[i].Weight = ptr(defaultWeight)
		}
	}
	if h := p.Health; h != nil {
		if h.Active == nil && h.Passive == nil {
			// An empty health block is a request for health checking; the
			// only kind that works without traffic is active.
			h.Active = &ActiveHealth{}
		}
		if a := h.Active; a != nil {
			setDefault(&a.Interval, defaultHealthInterval)
			setDefault(&a.Timeout, defaultHealthTimeout)
			setDefault(&a.Path, defaultHealthPath)
			setDefault(&a.ExpectedStatus, defaultExpectedStatus)
			setDefault(&a.HealthyThreshold, defaultHealthy)
			setDefault(&a.UnhealthyThreshold, defaultUnhealthy)
		}
		if ps := h.Passive; ps != nil {
			setDefault(&ps.ConsecutiveFailures, defaultPassiveFailures)
			setDefault(&ps.EjectionDuration, defaultEjection)
		}
	}
	if p.CircuitBreaker != nil {
		p.CircuitBreaker.applyDefaults()
	}
	if o := p.OutlierDetection; o != nil {
		setDefault(&o.ConsecutiveFailures, defaultOutlierFailures)
		setDefault(&o.ErrorRateThreshold, defaultOutlierRate)
		setDefault(&o.Interval, defaultOutlierInterval)
		setDefault(&o.BaseEjectionTime, defaultEjection)
		setDefault(&o.MaxEjectionPercent, defaultMaxEjection)
	}
	t := &p.Transport
	setDefault(&t.MaxIdlePerEndpoint, defaultMaxIdle)
	setDefault(&t.IdleTimeout, defaultTransportIdle)
	setDefault(&t.DialTimeout, defaultDialTimeout)
}

func (t *Traffic) applyDefaults() {
	if b := t.AutoBrake; b != nil {
		setDefault(&b.Window, defaultBrakeWindow)
		setDefault(&b.MinRequests, defaultBrakeMin)
		setDefault(&b.ErrorRateMultiplier, defaultBrakeMultiplier)
	}
	if o := t.OverloadProtection; o != nil {
		setDefault(&o.QueueTimeout, defaultQueueTimeout)
	}
}

func (ch *Chain) applyDefaults() {
	for _, s := range ch.Stages {
		if s.Config != nil && s.Config.JWT != nil && len(s.Config.JWT.Algorithms) == 0 {
			s.Config.JWT.Algorithms = []string{"RS256", "ES256", "EdDSA"}
		}
	}
}

func (c *Cache) applyDefaults() {
	if c.Enabled == nil {
		c.Enabled = ptr(true)
	}
	if c.AuthAware == nil {
		c.AuthAware = ptr(true)
	}
	setDefault(&c.MaxSize, defaultCacheMaxSize)
	setDefault(&c.MaxObjectSize, defaultCacheMaxObject)
	setDefault(&c.CoalesceTimeout, defaultCoalesceTimeout)
}

func (p *Plugin) applyDefaults() {
	setDefault(&p.Timeout, defaultPluginTimeout)
	setDefault(&p.FailMode, FailClosed)
}

func (l *Logging) applyDefaults() {
	if l.AccessLog == nil {
		l.AccessLog = ptr(true)
	}
	if len(l.RedactHeaders) == 0 {
		l.RedactHeaders = []string{"Authorization", "Cookie"}
	}
}

func (m *Metrics) applyDefaults() {
	if m.Enabled == nil {
		m.Enabled = ptr(true)
	}
	setDefault(&m.Path, defaultMetricsPath)
	setDefault(&m.TokenEnv, defaultTokenEnv)
}

// DefaultSampleRatio is the share of new traces sampled when the config
// has no tracing section (or no sample_ratio): 1%.
const DefaultSampleRatio = defaultSampleRatio
