package auth

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// The verified-token cache exists because a signature check costs tens of
// microseconds (RSA-2048, P-256, Ed25519 alike) while a client sends the
// same token on every request until it expires. It is safe because:
//
//   - the key is the whole token string, compared exactly, so a hit means
//     the very bytes whose signature was verified (no hash collisions to
//     reason about; a key made of the signature alone would let a forged
//     payload ride on a valid signature);
//   - iss, aud and the algorithm list are fixed per Verifier, and so is
//     the cache;
//   - exp and nbf are checked on every hit, and a hit counts only while the
//     verifying key is still in the current set, so a key removed by a
//     refresh revokes its tokens at once;
//   - it is bounded: CacheSize entries of tokens up to maxCachedToken.

// maxCachedToken keeps oversized tokens out of the cache so that its
// memory stays bounded by entries × a few KB.
const maxCachedToken = 4 << 10

// cacheShards spreads lock traffic; a power of two.
const cacheShards = 16

// entry is a verified token: immutable once cached.
type entry struct {
	claims   Claims
	exp, nbf time.Time // nbf zero when absent
	key      *key      // the key that verified the signature
	forward  []string  // header values, aligned with Verifier.forward
}

// checkTime applies the time window with leeway, as the parser does:
// valid while now < exp+leeway and now >= nbf-leeway.
func (e *entry) checkTime(now time.Time, leeway time.Duration) *Error {
	if !now.Before(e.exp.Add(leeway)) {
		return invalidToken("token expired")
	}
	if !e.nbf.IsZero() && now.Before(e.nbf.Add(-leeway)) {
		return invalidToken("token not yet valid")
	}
	return nil
}

// tokenCache maps token strings to verified entries. A nil *tokenCache is a
// disabled cache: get misses and put does nothing.
type tokenCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex // guards m
	m  map[string]*entry
	_  [32]byte // pads to 64 bytes: neighbouring shards' locks on separate cache lines
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
	}
	return c
}

func (c *tokenCache) shard(tok string) *cacheShard {
	return &c.shards[maphash.String(c.seed, tok)&(cacheShards-1)]
}

func (c *tokenCache) get(tok string) *entry {
	if c == nil || len(tok) > maxCachedToken {
		return nil
	}
	s := c.shard(tok)
	s.mu.RLock()
	e := s.m[tok]
	s.mu.RUnlock()
	return e
}

// put caches e under tok. When the shard is full it drops expired entries,
// or else one arbitrary entry (map iteration order is randomised, so this
// is random eviction: no bookkeeping on the read path, and no access
// pattern can pin entries).
func (c *tokenCache) put(tok string, e *entry, now time.Time, leeway time.Duration) {
	if c == nil || len(tok) > maxCachedToken {
		return
	}
	tok = strings.Clone(tok) // do not pin the request's header block
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perShard {
		for k, old := range s.m {
			if !now.Before(old.exp.Add(leeway)) {
				delete(s.m, k)
			}
		}
	}
	if len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[tok] = e
}

// len returns the number of cached entries, for tests.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
