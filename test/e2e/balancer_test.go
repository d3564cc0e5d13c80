package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestBalancers(t *testing.T) {
	t.Parallel()
	ups := make([]*upstream, 3)
	for i := range ups {
		ups[i] = newEcho(t, fmt.Sprintf("u%d", i))
	}
	p := startProxy(t, fmt.Sprintf(`routes:
  - {id: rr, path: /rr, pool: rr}
  - {id: wrr, path: /wrr, pool: wrr}
  - {id: ch, path: /ch, pool: ch}
pools:
  - id: rr
    balancer: round_robin
    endpoints: [{address: %[1]s}, {address: %[2]s}, {address: %[3]s}]
  - id: wrr
    balancer: weighted_round_robin
    endpoints: [{address: %[1]s, weight: 3}, {address: %[2]s, weight: 1}]
  - id: ch
    balancer: consistent_hash
    hash_key: header:X-User
    endpoints: [{address: %[1]s}, {address: %[2]s}, {address: %[3]s}]
%[4]s`, ups[0].addr, ups[1].addr, ups[2].addr, fastShutdown))
	c := newClient(t, 10*time.Second)

	get := func(t *testing.T, path, user string) string {
		t.Helper()
		var hdr http.Header
		if user != "" {
			hdr = http.Header{"X-User": {user}}
		}
		resp, _ := do(t, c, http.MethodGet, p.url(path), "", hdr, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", path, resp.StatusCode)
		}
		return resp.Header.Get("X-Upstream")
	}

	tests := []struct {
		name      string
		path      string
		n         int
		want      map[string]int
		tolerance int
	}{
		{"round_robin even split", "/rr", 30, map[string]int{"u0": 10, "u1": 10, "u2": 10}, 0},
		{"weighted_round_robin 3:1", "/wrr", 40, map[string]int{"u0": 30, "u1": 10}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]int{}
			for range tc.n {
				got[get(t, tc.path, "")]++
			}
			for name, want := range tc.want {
				if d := got[name] - want; d > tc.tolerance || d < -tc.tolerance {
					t.Errorf("%s: %d of %d requests went to %s, want %d±%d (all: %v)", tc.path, got[name], tc.n, name, want, tc.tolerance, got)
				}
			}
			for name := range got {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("%s: requests went to %q, want only %v", tc.path, name, tc.want)
				}
			}
		})
	}

	t.Run("consistent_hash sticks per X-User", func(t *testing.T) {
		used := map[string]bool{}
		for u := range 20 {
			user := fmt.Sprintf("user-%d", u)
			first := get(t, "/ch", user)
			used[first] = true
			for i := range 4 {
				if got := get(t, "/ch", user); got != first {
					t.Errorf("X-User %s request %d went to %s, want %s like its first request", user, i+2, got, first)
				}
			}
		}
		if len(used) < 2 {
			t.Errorf("20 users all hashed to %v, want them spread over at least 2 of 3 endpoints", used)
		}
	})
}
