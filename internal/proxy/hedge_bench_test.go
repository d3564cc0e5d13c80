package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHedgingTail is the hedging bar of the resilience issue: against
// upstreams whose p50 is 5 ms and p99 is 500 ms (every 50th request stalls:
// 2%), hedging at a 50 ms delay must cut the client p99 below 100 ms with at
// most 5% extra upstream requests. Each sub-benchmark sends b.N requests
// from 8 concurrent clients and reports the client p50 and p99 and the
// extra upstream requests per client request; "off" is the same route
// without hedging, for comparison.
//
//	go test -run '^$' -bench HedgingTail -benchtime 2000x ./internal/proxy/
func BenchmarkHedgingTail(b *testing.B) {
	var upstreamReqs atomic.Int64
	slow := func(w http.ResponseWriter, r *http.Request) {
		d := 5 * time.Millisecond
		if upstreamReqs.Add(1)%50 == 0 {
			d = 500 * time.Millisecond
		}
		select {
		case <-time.After(d):
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	}
	a, c := upstreamServer(b, slow), upstreamServer(b, slow)
	for _, tc := range []struct{ name, policy string }{
		{"off", ""},
		{"delay=50ms", "policies: [{id: pol, hedging: {delay: 50ms, max_hedges: 1}}]\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			route := "routes: [{id: r, path_prefix: /, pool: p}]\n"
			if tc.policy != "" {
				route = "routes: [{id: r, path_prefix: /, pool: p, policy: pol}]\n" + tc.policy
			}
			url := newProxy(b, route+"pools: [{id: p, balancer: round_robin, endpoints: "+poolOf(a, c)+"}]\n", "")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			upstreamReqs.Store(0)
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						start := time.Now()
						resp, err := client.Get(url + "/x")
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(start)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
			extra := float64(upstreamReqs.Load()-int64(b.N)) / float64(b.N) * 100
			b.ReportMetric(p(0.50), "p50_ms")
			b.ReportMetric(p(0.99), "p99_ms")
			b.ReportMetric(extra, "extra_upstream_%")
			if testing.Verbose() {
				fmt.Printf("%s: p50 %.1f ms, p99 %.1f ms, extra upstream requests %.2f%%\n", tc.name, p(0.5), p(0.99), extra)
			}
		})
	}
}
