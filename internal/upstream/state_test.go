package upstream

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/obs"
)

// get sends GET path to e through its transport and returns the body.
func get(t testing.TB, e *Endpoint, path string) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.Scheme()+"://"+e.Address()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Transport().RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestBuildReuse(t *testing.T) {
	t.Parallel()
	base := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:9001", Weight: 2}}}
	tests := []struct {
		name     string
		change   func(*PoolConfig)
		wantSame bool
	}{
		{name: "identical", change: func(*PoolConfig) {}, wantSame: true},
		{name: "http scheme prefix", change: func(c *PoolConfig) { c.Endpoints[0].Address = "http://127.0.0.1:9001" }, wantSame: true},
		{name: "weight", change: func(c *PoolConfig) { c.Endpoints[0].Weight = 5 }, wantSame: true},
		{name: "balancer", change: func(c *PoolConfig) { c.Balancer = LeastRequest }, wantSame: true},
		{name: "explicit defaults", change: func(c *PoolConfig) {
			c.Transport = TransportConfig{MaxIdlePerEndpoint: 256, IdleTimeout: 90 * time.Second, DialTimeout: time.Second}
		}, wantSame: true},
		{name: "explicit http1", change: func(c *PoolConfig) { c.Protocol = HTTP1 }, wantSame: true},
		{name: "dial timeout", change: func(c *PoolConfig) { c.Transport.DialTimeout = 2 * time.Second }},
		{name: "response header timeout", change: func(c *PoolConfig) { c.Transport.ResponseHeaderTimeout = time.Second }},
		{name: "max idle", change: func(c *PoolConfig) { c.Transport.MaxIdlePerEndpoint = 1 }},
		{name: "protocol", change: func(c *PoolConfig) { c.Protocol = H2C }},
		{name: "pool id", change: func(c *PoolConfig) { c.ID = "q" }},
		{name: "port", change: func(c *PoolConfig) { c.Endpoints[0].Address = "127.0.0.1:9002" }},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		first := mustBuild(t, s, base)
		cfg := base
		cfg.Endpoints = []EndpointConfig{base.Endpoints[0]}
		tt.change(&cfg)
		next := mustBuild(t, s, cfg)
		same := next.Endpoints()[0] == first.Endpoints()[0]
		if same != tt.wantSame {
			t.Errorf("%s: rebuilt endpoint reused = %v, want %v", tt.name, same, tt.wantSame)
		}
		if got := first.Weight(0); got != 2 {
			t.Errorf("%s: first view Weight(0) = %d after a rebuild, want 2 (views are immutable)", tt.name, got)
		}
		if got, want := next.Weight(0), max(cfg.Endpoints[0].Weight, 1); got != want {
			t.Errorf("%s: next view Weight(0) = %d, want %d", tt.name, got, want)
		}
	}
}

func TestBuildDefaults(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	p := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "http://LocalHost:8080"}}, HashKey: HashKey{Kind: HashClientIP}})
	e := p.Endpoints()[0]
	if p.ID() != "p" || p.Balancer() != RoundRobin || p.Protocol() != HTTP1 || p.HashKey() != (HashKey{}) || p.Weight(0) != 1 {
		t.Errorf("Build defaults: id %q balancer %v protocol %v hash key %+v weight %d; want p, round_robin, http1, zero, 1",
			p.ID(), p.Balancer(), p.Protocol(), p.HashKey(), p.Weight(0))
	}
	if e.Address() != "localhost:8080" || e.Scheme() != "http" || e.PoolID() != "p" || e.Protocol() != HTTP1 {
		t.Errorf("Endpoint = %s %s %s %v, want localhost:8080 http p http1", e.Address(), e.Scheme(), e.PoolID(), e.Protocol())
	}
	if e.Metrics() != nil {
		t.Errorf("Metrics() = %v without obs.Metrics, want nil", e.Metrics())
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	ok := []EndpointConfig{{Address: "127.0.0.1:9001"}}
	tests := []struct {
		name    string
		cfg     PoolConfig
		wantErr error
		wantMsg string
	}{
		{name: "empty id", cfg: PoolConfig{Endpoints: ok}, wantMsg: "empty id"},
		{name: "no endpoints", cfg: PoolConfig{ID: "p"}, wantMsg: "no endpoints"},
		{name: "bad address", cfg: PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "nope"}}}, wantMsg: "endpoints[0]"},
		{name: "negative weight", cfg: PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:1", Weight: -1}}}, wantMsg: "negative weight"},
		{name: "duplicate address", cfg: PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:1"}, {Address: "http://127.0.0.1:1"}}}, wantMsg: "repeats endpoints[0]"},
		{name: "hash without key", cfg: PoolConfig{ID: "p", Endpoints: ok, Balancer: ConsistentHash}, wantMsg: "needs a hash key"},
		{name: "hash bad name", cfg: PoolConfig{ID: "p", Endpoints: ok, Balancer: ConsistentHash, HashKey: HashKey{Kind: HashHeader, Name: "a b"}}, wantMsg: "invalid name"},
		{name: "unknown balancer", cfg: PoolConfig{ID: "p", Endpoints: ok, Balancer: 42}, wantMsg: "invalid balancer"},
		{name: "unknown protocol", cfg: PoolConfig{ID: "p", Endpoints: ok, Protocol: 42}, wantMsg: "invalid protocol"},
		{name: "http2 without TLS", cfg: PoolConfig{ID: "p", Endpoints: ok, Protocol: HTTP2}, wantMsg: "endpoints[0]: address \"127.0.0.1:9001\": protocol http2 needs TLS"},
		{name: "http2 with one plaintext endpoint", cfg: PoolConfig{ID: "p", Protocol: HTTP2,
			Endpoints: []EndpointConfig{{Address: "https://127.0.0.1:1"}, {Address: "127.0.0.1:2"}}}, wantMsg: "endpoints[1]"},
		{name: "h2c with https", cfg: PoolConfig{ID: "p", Protocol: H2C, Endpoints: []EndpointConfig{{Address: "https://127.0.0.1:443"}}}, wantMsg: "h2c is cleartext"},
		{name: "h2c with TLS settings", cfg: PoolConfig{ID: "p", Protocol: H2C, Endpoints: ok, TLS: &TLSConfig{}}, wantMsg: "h2c is cleartext"},
		{name: "http:// with TLS settings", cfg: PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "http://127.0.0.1:1"}}, TLS: &TLSConfig{}}, wantMsg: "plaintext but the pool has TLS settings"},
		{name: "https and http for one address", cfg: PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "https://127.0.0.1:1"}, {Address: "http://127.0.0.1:1"}}}, wantMsg: "repeats endpoints[0]"},
		{name: "negative timeout", cfg: PoolConfig{ID: "p", Endpoints: ok, Transport: TransportConfig{IdleTimeout: -time.Second}}, wantMsg: "negative"},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p, err := s.Build(tt.cfg)
		if err == nil {
			t.Errorf("%s: Build = %v, want an error", tt.name, p)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Build error = %v, want %v", tt.name, err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%s: Build error = %q, want it to contain %q", tt.name, err, tt.wantMsg)
		}
		if len(s.entries) != 0 {
			t.Errorf("%s: failed Build left %d entries, want 0", tt.name, len(s.entries))
		}
	}
}

func TestBuildAfterClose(t *testing.T) {
	t.Parallel()
	s := NewState(nil)
	s.Close()
	s.Close() // idempotent
	if _, err := s.Build(PoolConfig{ID: "p", Endpoints: weighted(1)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Build after Close error = %v, want ErrClosed", err)
	}
	s.Commit(nil) // must not panic
}

// TestCommitDrainsIdle: an idle connection to a removed endpoint is closed,
// while its sibling's keeps serving.
func TestCommitDrainsIdle(t *testing.T) {
	t.Parallel()
	gone, goneConns := newWatchedServer(t, HTTP1, okHandler())
	kept, keptConns := newWatchedServer(t, HTTP1, okHandler())
	s := newTestState(t, nil)
	cfg := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: gone.Listener.Addr().String()}, {Address: kept.Listener.Addr().String()}}}
	old := mustBuild(t, s, cfg)
	s.Commit([]*Pool{old})
	for _, e := range old.Endpoints() {
		if body, err := get(t, e, "/"); err != nil || body != "ok" {
			t.Fatalf("GET %s = %q, %v; want ok", e.Address(), body, err)
		}
	}

	cfg.Endpoints = cfg.Endpoints[1:]
	next := mustBuild(t, s, cfg)
	s.Commit([]*Pool{next})

	eventually(t, "the removed endpoint's idle connection to close", func() bool {
		closed, opened := goneConns.count(http.StateClosed)
		return opened == 1 && closed == 1
	})
	if body, err := get(t, next.Endpoints()[0], "/"); err != nil || body != "ok" {
		t.Fatalf("GET kept endpoint = %q, %v; want ok", body, err)
	}
	if closed, opened := keptConns.count(http.StateClosed); opened != 1 || closed != 0 {
		t.Errorf("kept endpoint: %d connections opened, %d closed; want its one connection reused", opened, closed)
	}
	if n := old.Endpoints()[0].rt.openConns(); n != 0 {
		t.Errorf("removed endpoint holds %d connections, want 0", n)
	}
}

// TestCommitDrainsInFlight: a request in flight on a removed endpoint
// completes, and its connection is closed afterwards; a straggler that
// picked the endpoint from the old snapshot also completes and leaves no
// connection behind.
func TestCommitDrainsInFlight(t *testing.T) {
	t.Parallel()
	for _, proto := range []Protocol{HTTP1, H2C} {
		t.Run(proto.String(), func(t *testing.T) {
			t.Parallel()
			testDrainInFlight(t, proto, nil)
		})
	}
}

// testDrainInFlight runs TestCommitDrainsInFlight for proto, over TLS when
// pki is not nil.
func testDrainInFlight(t *testing.T, proto Protocol, pki *testPKI) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			close(entered)
			<-unblock
		}
		_, _ = io.WriteString(w, "done close="+map[bool]string{true: "yes", false: "no"}[r.Close])
	})
	cfg := PoolConfig{ID: "p", Protocol: proto}
	var ts *httptest.Server
	var conns *connWatch
	if pki == nil {
		ts, conns = newWatchedServer(t, proto, h)
	} else {
		ts, conns = newWatchedTLSServer(t, proto, pki.server, nil, h)
		cfg.TLS = &TLSConfig{CAFile: pki.caFile}
	}
	cfg.Endpoints = []EndpointConfig{{Address: ts.Listener.Addr().String()}}
	s := newTestState(t, nil)
	old := mustBuild(t, s, cfg)
	s.Commit([]*Pool{old})
	e := old.Endpoints()[0]

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		body, err := get(t, e, "/slow")
		done <- result{body, err}
	}()
	<-entered

	next := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: weighted(1)})
	s.Commit([]*Pool{next})
	if n := e.rt.openConns(); n != 1 {
		t.Errorf("after Commit the in-flight connection count = %d, want 1 (kept until the request ends)", n)
	}
	close(unblock)
	if r := <-done; r.err != nil || r.body != "done close=no" {
		t.Fatalf("in-flight request = %q, %v; want it to complete", r.body, r.err)
	}
	eventually(t, "the drained connection to close", func() bool {
		closed, opened := conns.count(http.StateClosed)
		return opened == 1 && closed == 1
	})

	// A straggler completes; over HTTP/1.1 it asks the upstream to close
	// the connection (HTTP/2 has no such header; the client closes it).
	want := "done close=yes"
	if proto != HTTP1 {
		want = "done close=no"
	}
	if body, err := get(t, e, "/"); err != nil || body != want {
		t.Fatalf("straggler request = %q, %v; want %q", body, err, want)
	}
	eventually(t, "the straggler's connection to close", func() bool {
		closed, opened := conns.count(http.StateClosed)
		return opened == 2 && closed == 2 && e.rt.openConns() == 0
	})
}

// TestRejectedBuildKeepsActive: a build that is then rejected, followed by
// a Commit of the still-active pools, leaves the active entries and their
// connections alone and creates no metric series.
func TestRejectedBuildKeepsActive(t *testing.T) {
	t.Parallel()
	ts, conns := newWatchedServer(t, HTTP1, okHandler())
	m := obs.NewMetrics()
	s := newTestState(t, m)
	addr := ts.Listener.Addr().String()
	active := mustBuild(t, s, PoolConfig{ID: "live", Endpoints: []EndpointConfig{{Address: addr}}})
	s.Commit([]*Pool{active})
	e := active.Endpoints()[0]
	if _, err := get(t, e, "/"); err != nil {
		t.Fatal(err)
	}
	e.Metrics().Observe(time.Millisecond)

	// The rejected apply: the live pool with another transport setting and
	// a new endpoint, plus a new pool.
	changed := mustBuild(t, s, PoolConfig{ID: "live", Transport: TransportConfig{DialTimeout: 3 * time.Second},
		Endpoints: []EndpointConfig{{Address: addr}, {Address: "127.0.0.1:9009"}}})
	fresh := mustBuild(t, s, PoolConfig{ID: "rejected", Endpoints: weighted(1)})
	if changed.Endpoints()[0] == e {
		t.Fatal("changed transport settings reused the entry, want a new one")
	}
	s.Commit([]*Pool{active})

	if len(s.entries) != 1 || s.entries[e.key] != e {
		t.Errorf("after the rejected build State holds %d entries, want only the live one", len(s.entries))
	}
	if e.rt.draining.Load() {
		t.Error("the live endpoint is draining, want untouched")
	}
	for _, p := range []*Pool{changed, fresh} {
		for _, x := range p.Endpoints() {
			if !x.rt.draining.Load() {
				t.Errorf("rejected entry %s/%s not released", p.ID(), x.Address())
			}
		}
	}
	if _, err := get(t, e, "/"); err != nil {
		t.Fatal(err)
	}
	if _, opened := conns.count(http.StateNew); opened != 1 {
		t.Errorf("live endpoint opened %d connections, want its idle one reused", opened)
	}
	if got := poolLabels(t, m, "proxy_upstream_requests_total"); strings.Join(got, ",") != "live" {
		t.Errorf("proxy_upstream_requests_total pools = %v, want [live]", got)
	}
	if got := poolLabels(t, m, "proxy_pool_total_endpoints"); strings.Join(got, ",") != "live" {
		t.Errorf("proxy_pool_total_endpoints pools = %v, want [live]", got)
	}
}

func TestCommitMetrics(t *testing.T) {
	t.Parallel()
	m := obs.NewMetrics()
	s := newTestState(t, m)
	a := mustBuild(t, s, PoolConfig{ID: "a", Endpoints: weighted(1, 1)})
	b := mustBuild(t, s, PoolConfig{ID: "b", Endpoints: weighted(1)})
	s.Commit([]*Pool{a, b})
	b.Endpoints()[0].Metrics().Observe(time.Millisecond)
	if got := poolLabels(t, m, "proxy_pool_total_endpoints"); strings.Join(got, ",") != "a,b" {
		t.Errorf("after Commit(a, b) proxy_pool_total_endpoints pools = %v, want [a b]", got)
	}
	if got := gaugeValue(t, m, "proxy_pool_total_endpoints", "a"); got != 2 {
		t.Errorf("proxy_pool_total_endpoints{pool=a} = %v, want 2", got)
	}
	s.Commit([]*Pool{a})
	for _, name := range []string{"proxy_pool_total_endpoints", "proxy_pool_healthy_endpoints", "proxy_upstream_requests_total"} {
		for _, pool := range poolLabels(t, m, name) {
			if pool == "b" {
				t.Errorf("after b was removed %s still has pool b", name)
			}
		}
	}
	// A request straggling on the removed pool's endpoint does not bring
	// its series back.
	b.Endpoints()[0].Metrics().Observe(time.Millisecond)
	if got := poolLabels(t, m, "proxy_upstream_requests_total"); strings.Join(got, ",") != "" {
		t.Errorf("after a straggler proxy_upstream_requests_total pools = %v, want none", got)
	}
}

// poolLabels returns the sorted distinct pool label values of a metric.
func poolLabels(t testing.TB, m *obs.Metrics, name string) []string {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var pools []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "pool" && (len(pools) == 0 || pools[len(pools)-1] != l.GetValue()) {
					pools = append(pools, l.GetValue())
				}
			}
		}
	}
	return pools
}

func gaugeValue(t testing.TB, m *obs.Metrics, name, pool string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "pool" && l.GetValue() == pool {
					return metric.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
