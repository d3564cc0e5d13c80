package registry

import (
	"sync"
	"testing"
)

type thing struct {
	key     string
	setting int
	closed  bool
}

func (t *thing) Close() { t.closed = true }

func TestBuildCommitAbort(t *testing.T) {
	created := 0
	r := New(func(k string) *thing { created++; return &thing{key: k} })
	a := r.Acquire("a", func(t *thing) { t.setting = 1 })
	if a.setting != 1 {
		t.Fatalf("a new value did not get its settings at once")
	}
	r.Commit([]string{"a"})
	r.Acquire("a", func(t *thing) { t.setting = 2 })
	if a.setting != 1 {
		t.Fatalf("a live value took new settings before Commit")
	}
	r.Commit([]string{"a"})
	if a.setting != 2 {
		t.Fatalf("update not applied at Commit")
	}
	if got, ok := r.Get("a"); !ok || got != a {
		t.Fatalf("Get(a) = %v, %v", got, ok)
	}

	// A rejected build changes nothing: not the live value, not its
	// settings, and what it created is forgotten.
	if again := r.Acquire("a", func(t *thing) { t.setting = 99 }); again != a {
		t.Fatalf("Acquire of a live key returned a new value")
	}
	r.Acquire("b", nil)
	r.Abort()
	if a.setting != 2 {
		t.Fatalf("aborted build changed live settings to %d", a.setting)
	}
	if _, ok := r.Get("b"); ok {
		t.Fatalf("aborted build's entry became live")
	}

	// A committed build keeps shared keys (same value), adds new ones and
	// drops and closes the rest.
	a2 := r.Acquire("a", nil)
	c := r.Acquire("c", nil)
	r.Commit([]string{"a", "c"})
	if a2 != a {
		t.Fatalf("shared key got a new value")
	}
	r.Acquire("c", nil)
	r.Commit([]string{"c"})
	if !a.closed || c.closed {
		t.Fatalf("dropped entry closed = %v, kept entry closed = %v", a.closed, c.closed)
	}
	n := 0
	r.Range(func(string, *thing) { n++ })
	if n != 1 {
		t.Fatalf("Range saw %d entries, want 1", n)
	}
}

func TestRangeConcurrentWithCommit(t *testing.T) {
	r := New(func(k string) *thing { return &thing{key: k} })
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			r.Acquire("x", nil)
			r.Commit([]string{"x"})
		}
	})
	for range 200 {
		r.Range(func(string, *thing) {})
	}
	wg.Wait()
}
