package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewDoesNotFetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwks(jwkOf(testKeys(t)["ed"], false)))
	newTestVerifier(t, srv, newClock(), nil)
	if n := srv.fetches.Load(); n != 0 {
		t.Errorf("fetches after New = %d, want 0 (no network at config validation)", n)
	}
}

func TestFirstUseFetchesOnce(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			tok := sign(t, keys["ed"], claims(map[string]any{"jti": fmt.Sprint(i)}))
			if _, err := v.Verify(context.Background(), bearer(tok)); err != nil {
				t.Errorf("Verify = %v, want success", err)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (concurrent first uses share one fetch)", n)
	}
}

func TestUnknownKIDRefresh(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false)))
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	if _, err := v.Verify(context.Background(), bearer(sign(t, keys["rsa"], claims(nil)))); err != nil {
		t.Fatalf("Verify(rsa) = %v", err)
	}

	// The issuer rotates: the new key appears in the set.
	srv.set(jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ed"], false)))
	clk.Add(minRefreshGap)
	tok := sign(t, keys["ed"], claims(nil))
	if _, err := v.Verify(context.Background(), bearer(tok)); err != nil {
		t.Fatalf("Verify(new kid) = %v, want success after a refresh", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

func TestRefreshRateLimit(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false)))
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	good := sign(t, keys["rsa"], claims(nil))
	if _, err := v.Verify(context.Background(), bearer(good)); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	// Tokens with made-up kids, signed by a key the set does not have.
	var unknown []string
	for i := range 8 {
		k := keys["ed2"]
		k.kid = fmt.Sprintf("made-up-%d", i)
		unknown = append(unknown, sign(t, k, claims(nil)))
	}
	hammer := func() {
		t.Helper()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 25 {
					_, err := v.Verify(context.Background(), bearer(unknown[(g+i)%len(unknown)]))
					if got := errDesc(err); got != "unknown signing key" {
						t.Errorf("Verify(unknown kid) = %q, want unknown signing key", got)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	steps := []struct {
		advance time.Duration
		want    int32 // total fetches after hammering
	}{
		{0, 1},                           // the first use fetched moments ago
		{minRefreshGap - time.Second, 1}, // still inside the gap
		{time.Second, 2},                 // the gap has passed: exactly one more
		{5 * time.Second, 2},
		{minRefreshGap, 3},
	}
	for i, s := range steps {
		clk.Add(s.advance)
		hammer()
		if n := srv.fetches.Load(); n != s.want {
			t.Fatalf("step %d (+%v): fetches = %d, want %d", i, s.advance, n, s.want)
		}
	}
	if _, err := v.Verify(context.Background(), bearer(good)); err != nil {
		t.Errorf("Verify(known kid) after the hammering = %v, want success", err)
	}
}

func TestFetchFailureKeepsKeys(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	tests := []struct {
		desc   string
		break_ func(*jwksServer)
		want   string // in the OnError error
	}{
		{"status 500", func(s *jwksServer) { s.status.Store(http.StatusInternalServerError) }, "status 500"},
		{"not JSON", func(s *jwksServer) { s.set([]byte("<html>")) }, "parse jwks"},
		{"no usable keys", func(s *jwksServer) { s.set(jwks()) }, "no usable signing key"},
		{"server down", func(s *jwksServer) { s.Close() }, "refresh jwks"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ec"], false)))
			var mu sync.Mutex
			var reported []error
			v := newTestVerifier(t, srv, newClock(), func(c *Config) {
				c.CacheSize = -1 // every Verify needs the keys
				c.OnError = func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
			})
			if _, err := v.Verify(context.Background(), bearer(sign(t, keys["rsa"], claims(nil)))); err != nil {
				t.Fatalf("Verify = %v", err)
			}
			tc.break_(srv)
			if err := v.refresh(context.Background(), true); err == nil {
				t.Fatal("refresh of a broken JWKS = nil, want error")
			}
			mu.Lock()
			if len(reported) == 0 || !strings.Contains(reported[len(reported)-1].Error(), tc.want) {
				t.Errorf("OnError got %v, want an error containing %q", reported, tc.want)
			}
			mu.Unlock()
			for _, k := range []testKey{keys["rsa"], keys["ec"]} {
				if _, err := v.Verify(context.Background(), bearer(sign(t, k, claims(map[string]any{"jti": "new"})))); err != nil {
					t.Errorf("Verify(%s) after failed refresh = %v, want success with the old keys", k.alg, err)
				}
			}
		})
	}
}

func TestFirstFetchFailure(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	srv.status.Store(http.StatusServiceUnavailable)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	tok := bearer(sign(t, keys["ed"], claims(nil)))
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); errDesc(err) != "signing keys unavailable" {
			t.Fatalf("Verify with the JWKS down = %v, want signing keys unavailable", err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (retries are rate-limited)", n)
	}
	srv.status.Store(0)
	clk.Add(minRefreshGap)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("Verify after the JWKS recovered = %v, want success", err)
	}
}

func TestRefreshWaiterCancelled(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	release := make(chan struct{})
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	inner := v.load
	started := make(chan struct{})
	v.load = func(ctx context.Context) ([]byte, error) {
		close(started)
		<-release
		return inner(ctx)
	}
	// The first caller's client hangs up: the fetch it started must go on
	// for the others.
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- v.refresh(ctx1, false) }()
	<-started
	cancel1()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := v.refresh(ctx2, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting refresh with an expiring ctx = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := <-done1; err != nil {
		t.Errorf("fetching refresh whose ctx was cancelled = %v, want success (fetch detached from the request)", err)
	}
	if v.keys.Load() == nil {
		t.Error("keys not loaded")
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false)))
	clk := newClock()
	v := newTestVerifier(t, srv, clk, func(c *Config) { c.RefreshInterval = 20 * time.Millisecond })
	old := bearer(sign(t, keys["rsa"], claims(nil)))

	ctx, cancel := context.WithCancel(context.Background())
	var stopped atomic.Bool
	runErr := make(chan error, 1)
	go func() { runErr <- v.Run(ctx); stopped.Store(true) }()
	waitFor(t, "first fetch", func() bool { return v.keys.Load() != nil })
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatalf("Verify = %v", err)
	}

	// The issuer revokes rsa-1: the next periodic refresh drops it, and
	// the cached token goes with it.
	srv.set(jwks(jwkOf(keys["ed"], false)))
	n := srv.fetches.Load()
	waitFor(t, "periodic refreshes", func() bool { return srv.fetches.Load() >= n+2 })
	if _, err := v.Verify(context.Background(), old); errDesc(err) != "unknown signing key" {
		t.Errorf("Verify(revoked key's token) = %v, want unknown signing key", err)
	}

	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if !stopped.Load() {
		t.Error("Run did not return")
	}
}

func TestRunRetriesSoonerAfterFailure(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	srv.status.Store(http.StatusBadGateway)
	v := newTestVerifier(t, srv, newClock(), func(c *Config) { c.RefreshInterval = time.Hour })
	v.gap = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- v.Run(ctx) }()
	waitFor(t, "a failed fetch", func() bool { return srv.fetches.Load() >= 1 })
	srv.status.Store(0)
	waitFor(t, "a retry within the gap, not the hour", func() bool { return v.keys.Load() != nil })
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestHTTPSource(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	load := httpSource(srv.Client(), srv.URL)
	if _, err := load(context.Background()); err != nil {
		t.Fatalf("load = %v", err)
	}
	srv.set([]byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`))
	if _, err := load(context.Background()); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("load(oversized set) = %v, want a size error", err)
	}
	srv.status.Store(http.StatusNotFound)
	if _, err := load(context.Background()); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("load(404) = %v, want a status error", err)
	}
}
