package auth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCacheChecksTimeOnHit(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	tok := bearer(sign(t, keys["ed"], claims(map[string]any{"nbf": t0.Add(-time.Minute).Unix()})))

	steps := []struct {
		at   time.Time
		want string
	}{
		{t0, ""},
		{t0.Add(time.Hour + DefaultLeeway - time.Second), ""},
		{t0.Add(time.Hour + DefaultLeeway), "token expired"}, // exp + leeway is excluded, as in the parser
		{t0.Add(2 * time.Hour), "token expired"},
	}
	for _, s := range steps {
		clk.Set(s.at)
		_, err := v.Verify(context.Background(), tok)
		if got := errDesc(err); got != s.want {
			t.Errorf("Verify at t0+%v = %q, want %q", s.at.Sub(t0), got, s.want)
		}
		if n := v.cache.len(); n != 1 {
			t.Errorf("cache len at t0+%v = %d, want 1 (the hit path answered)", s.at.Sub(t0), n)
		}
	}
}

func TestEntryCheckTime(t *testing.T) {
	t.Parallel()
	e := &entry{exp: t0.Add(time.Minute), nbf: t0}
	leeway := 5 * time.Second
	tests := []struct {
		now  time.Time
		want string
	}{
		{t0.Add(-leeway - time.Second), "token not yet valid"},
		{t0.Add(-leeway), ""},
		{t0.Add(time.Minute + leeway - time.Nanosecond), ""},
		{t0.Add(time.Minute + leeway), "token expired"},
	}
	for _, tc := range tests {
		got := ""
		if err := e.checkTime(tc.now, leeway); err != nil {
			got = err.Description
		}
		if got != tc.want {
			t.Errorf("checkTime(t0%+v) = %q, want %q", tc.now.Sub(t0), got, tc.want)
		}
	}
}

func TestCacheRevokedKey(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	rsaTok, edTok := bearer(sign(t, keys["rsa"], claims(nil))), bearer(sign(t, keys["ed"], claims(nil)))
	for _, tok := range []string{rsaTok, edTok} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	}
	edEntry := v.cache.get(strings.TrimPrefix(edTok, "Bearer "))
	if edEntry == nil {
		t.Fatal("token not cached")
	}

	srv.set(jwks(jwkOf(keys["ed"], false))) // rsa-1 revoked
	if err := v.refresh(context.Background(), true); err != nil {
		t.Fatalf("refresh = %v", err)
	}
	if _, err := v.Verify(context.Background(), rsaTok); errDesc(err) != "unknown signing key" {
		t.Errorf("Verify(cached token of a revoked key) = %v, want unknown signing key", err)
	}
	// An unchanged key keeps its identity across the refresh, so its
	// tokens stay cached.
	if !v.keys.Load().holds(edEntry.key) {
		t.Error("refresh replaced the unchanged Ed25519 key: cache entries lost")
	}
	if _, err := v.Verify(context.Background(), edTok); err != nil {
		t.Errorf("Verify(ed token) = %v, want success", err)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	clk := newClock()
	v := newTestVerifier(t, srv, clk, func(c *Config) { c.CacheSize = 64 })
	for i := range 500 {
		tok := sign(t, keys["ed"], claims(map[string]any{"jti": fmt.Sprint(i)}))
		if _, err := v.Verify(context.Background(), bearer(tok)); err != nil {
			t.Fatalf("Verify(%d) = %v", i, err)
		}
		if n := v.cache.len(); n > 64 {
			t.Fatalf("cache len after %d tokens = %d, want <= 64", i+1, n)
		}
	}
	big := sign(t, keys["ed"], claims(map[string]any{"pad": strings.Repeat("x", maxCachedToken)}))
	if _, err := v.Verify(context.Background(), bearer(big)); err != nil {
		t.Fatalf("Verify(big) = %v", err)
	}
	if v.cache.get(big) != nil {
		t.Errorf("a %d-byte token was cached, want tokens over %d bytes skipped", len(big), maxCachedToken)
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	t.Parallel()
	c := newTokenCache(cacheShards) // one entry per shard
	// Find two tokens of the same shard.
	a := "token-a"
	b := ""
	for i := 0; b == ""; i++ {
		if s := fmt.Sprint("token-", i); s != a && c.shard(s) == c.shard(a) {
			b = s
		}
	}
	c.put(a, &entry{exp: t0}, t0.Add(-time.Hour), 0)
	c.put(b, &entry{exp: t0.Add(time.Hour)}, t0.Add(time.Second), 0)
	if c.get(a) != nil || c.get(b) == nil {
		t.Errorf("after put(b) into a full shard: a cached %v, b cached %v; want a evicted, b cached", c.get(a) != nil, c.get(b) != nil)
	}
	var nilCache *tokenCache
	nilCache.put(a, &entry{}, t0, 0)
	if nilCache.get(a) != nil {
		t.Error("nil cache returned an entry")
	}
}
