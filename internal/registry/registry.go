// Package registry keeps runtime state that must outlive a config snapshot
// (circuit breakers, retry budgets, and whatever later features need),
// keyed by stable ids, with the same build-then-commit discipline as the
// upstream registry: a build acquires entries, the apply pipeline commits
// the keys the new snapshot uses after its swap (dropping the others), or
// aborts after a rejected build so that it changes nothing.
package registry

import "sync"

// Registry holds values of type T by key. The zero value is not usable;
// build one with New. Acquire, Commit and Abort are for the apply pipeline,
// which serialises builds; Range is safe for concurrent use with all of
// them (the metrics scrape calls it).
type Registry[T any] struct {
	create func(key string) T

	mu      sync.Mutex
	live    map[string]T
	pending map[string]T       // created by the build in progress
	updates map[string]func(T) // settings changes, applied at Commit
}

// New returns an empty registry whose Acquire creates missing values with
// create. create may be nil for a registry whose values need more than a
// key to build: it is then filled only through AcquireNew.
func New[T any](create func(key string) T) *Registry[T] {
	return &Registry[T]{create: create, live: make(map[string]T),
		pending: make(map[string]T), updates: make(map[string]func(T))}
}

// Acquire returns the value for key for the build in progress: the live
// one, or a new one that becomes live only if the build is committed with
// key. update, when not nil, carries the build's settings: a new value
// gets them at once, a live one at Commit, because a live breaker must not
// take a rejected config's settings.
func (r *Registry[T]) Acquire(key string, update func(T)) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.live[key]
	if !ok {
		// A value this build creates serves nobody until the swap, so it
		// takes its settings at once: the new snapshot must never see a
		// value without them.
		if v, ok = r.pending[key]; !ok {
			v = r.create(key)
			r.pending[key] = v
		}
		if update != nil {
			update(v)
		}
		return v
	}
	if update != nil {
		r.updates[key] = update
	} else {
		delete(r.updates, key)
	}
	return v
}

// AcquireNew is Acquire for values whose creation can fail or needs more
// than the key: a live value (or one this build already made) is reused
// as is; otherwise mk makes one, which becomes live at Commit.
func (r *Registry[T]) AcquireNew(key string, mk func() (T, error)) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.live[key]; ok {
		return v, nil
	}
	if v, ok := r.pending[key]; ok {
		return v, nil
	}
	v, err := mk()
	if err != nil {
		return v, err
	}
	r.pending[key] = v
	return v, nil
}

// Commit makes exactly keys live, in the state the build acquired them,
// applying the pending updates; entries not in keys are dropped (and, if
// T has a Close() method, closed). Call it after the swap of the snapshot
// built with those keys.
func (r *Registry[T]) Commit(keys []string) { r.CommitDiff(keys) }

// CommitDiff is Commit that also returns the values that became live and
// those dropped, for owners of values with goroutines to start and stop.
func (r *Registry[T]) CommitDiff(keys []string) (added, dropped []T) {
	r.mu.Lock()
	next := make(map[string]T, len(keys))
	for _, k := range keys {
		if v, ok := r.live[k]; ok {
			next[k] = v
		} else if v, ok := r.pending[k]; ok {
			next[k] = v
		}
	}
	for k, v := range next {
		if _, was := r.live[k]; !was {
			added = append(added, v)
		}
	}
	for k, v := range r.live {
		if _, ok := next[k]; !ok {
			dropped = append(dropped, v)
		}
	}
	updates := r.updates
	r.live, r.pending, r.updates = next, make(map[string]T), make(map[string]func(T))
	r.mu.Unlock()
	for k, u := range updates {
		if v, ok := next[k]; ok {
			u(v)
		}
	}
	for _, v := range dropped {
		if c, ok := any(v).(interface{ Close() }); ok {
			c.Close()
		}
	}
	return added, dropped
}

// Abort forgets what the build in progress acquired; live values and their
// settings are untouched.
func (r *Registry[T]) Abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending, r.updates = make(map[string]T), make(map[string]func(T))
}

// Range calls fn for every live entry, in no particular order, with the
// registry unlocked (fn may be slow).
func (r *Registry[T]) Range(fn func(key string, v T)) {
	r.mu.Lock()
	entries := make([]struct {
		k string
		v T
	}, 0, len(r.live))
	for k, v := range r.live {
		entries = append(entries, struct {
			k string
			v T
		}{k, v})
	}
	r.mu.Unlock()
	for _, e := range entries {
		fn(e.k, e.v)
	}
}

// Get returns the live value for key.
func (r *Registry[T]) Get(key string) (T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.live[key]
	return v, ok
}
