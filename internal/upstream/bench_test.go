package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPick measures one pick per balancer over 10 endpoints, from
// parallel goroutines (the counters are shared); none may allocate.
func BenchmarkPick(b *testing.B) {
	weights := []int{1, 2, 3, 4, 5, 1, 2, 3, 4, 5}
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	r.Header.Set("X-User", "user-12345")
	r.Header.Set("Cookie", "theme=dark; sid=abcdef0123456789")
	tests := []struct {
		name    string
		cfg     PoolConfig
		exclude bool // pass an endpoint to avoid, as a retry does
	}{
		{name: "round_robin", cfg: PoolConfig{Balancer: RoundRobin}},
		{name: "weighted_round_robin", cfg: PoolConfig{Balancer: WeightedRoundRobin}},
		{name: "least_request", cfg: PoolConfig{Balancer: LeastRequest}},
		{name: "random", cfg: PoolConfig{Balancer: Random}},
		{name: "consistent_hash_header", cfg: PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashHeader, Name: "X-User"}}},
		{name: "consistent_hash_cookie", cfg: PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashCookie, Name: "sid"}}},
		{name: "consistent_hash_client_ip", cfg: PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashClientIP}}},
		{name: "round_robin_exclude", cfg: PoolConfig{Balancer: RoundRobin}, exclude: true},
		{name: "weighted_round_robin_exclude", cfg: PoolConfig{Balancer: WeightedRoundRobin}, exclude: true},
		{name: "least_request_exclude", cfg: PoolConfig{Balancer: LeastRequest}, exclude: true},
		{name: "consistent_hash_header_exclude", cfg: PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashHeader, Name: "X-User"}}, exclude: true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			s := NewState(nil)
			defer s.Close()
			cfg := tt.cfg
			cfg.ID, cfg.Endpoints = "bench", weighted(weights...)
			p, err := s.Build(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var exclude *Endpoint
			if tt.exclude {
				exclude = p.Endpoints()[3]
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p.Pick(r, "192.0.2.7", exclude) == nil {
						b.Fatal("Pick = nil")
					}
				}
			})
		})
	}
}

// BenchmarkRoundTrip measures a GET through an endpoint's transport to a
// local test server, body read and closed, over a kept-alive connection.
func BenchmarkRoundTrip(b *testing.B) {
	for _, proto := range []Protocol{HTTP1, H2C} {
		b.Run(proto.String(), func(b *testing.B) {
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "hello, world")
			})
			var ts *httptest.Server
			if proto == H2C {
				ts = h2cServer(b, h)
			} else {
				ts = httptest.NewServer(h)
				b.Cleanup(ts.Close)
			}
			s := NewState(nil)
			b.Cleanup(s.Close)
			e := endpointFor(b, s, ts.Listener.Addr().String(), proto, TransportConfig{})
			rt := e.Transport()
			req, _ := http.NewRequest(http.MethodGet, "http://"+e.Address()+"/", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkSelect compares Pick and Select over 10 endpoints of a pool with
// passive health and outlier detection, from parallel goroutines: all
// healthy (the common case, which must cost Select no more than a couple of
// atomic loads over Pick), and with every other endpoint ejected (the
// fallback walk). Report is the per-attempt bookkeeping.
func BenchmarkSelect(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	r.Header.Set("X-User", "user-12345")
	balancers := []struct {
		name string
		cfg  PoolConfig
	}{
		{name: "round_robin", cfg: PoolConfig{Balancer: RoundRobin}},
		{name: "least_request", cfg: PoolConfig{Balancer: LeastRequest}},
		{name: "consistent_hash", cfg: PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashHeader, Name: "X-User"}}},
	}
	for _, bal := range balancers {
		for _, mode := range []string{"pick", "select", "select_half_ejected", "report"} {
			b.Run(bal.name+"/"+mode, func(b *testing.B) {
				s := NewState(nil)
				defer s.Close()
				cfg := bal.cfg
				cfg.ID, cfg.Endpoints = "bench", weighted(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
				cfg.Passive = &PassiveHealth{ConsecutiveFailures: 5}
				cfg.Outlier = &OutlierDetection{ConsecutiveFailures: 5, ErrorRatePercent: 50, Interval: time.Hour}
				p, err := s.Build(cfg)
				if err != nil {
					b.Fatal(err)
				}
				s.Commit([]*Pool{p})
				if mode == "select_half_ejected" {
					now := time.Now().UnixNano()
					for i, e := range p.Endpoints() {
						if i%2 == 0 {
							e.eject(now, now+int64(time.Hour))
						}
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						switch mode {
						case "pick":
							if p.Pick(r, "192.0.2.7", nil) == nil {
								b.Fatal("Pick = nil")
							}
						case "report":
							p.endpoints[3].Report(true, time.Millisecond)
						default:
							if _, err := p.Select(r, "192.0.2.7", nil); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			})
		}
	}
}
