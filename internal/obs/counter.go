package obs

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// atomicCounter is a lazily resolved prometheus.Counter handle. Resolution
// may race; both racers get a handle to the same series, so the loser's
// work is merely wasted, never wrong.
type atomicCounter struct {
	p atomic.Pointer[prometheus.Counter]
}

func (a *atomicCounter) get(resolve func() prometheus.Counter) prometheus.Counter {
	if c := a.p.Load(); c != nil {
		return *c
	}
	c := resolve()
	a.p.Store(&c)
	return c
}
