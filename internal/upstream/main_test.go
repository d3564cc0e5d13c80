package upstream

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keelproxy/keel/internal/obs"
)

// TestMain fails the package when a test leaves goroutines behind: every
// transport connection must be closed by State.Close or a drain.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pcgSource is a deterministic randSource for tests.
type pcgSource struct {
	mu  sync.Mutex
	pcg *rand.PCG
}

func (s *pcgSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pcg.Uint64()
}

// newTestState returns a State with deterministic randomness that is closed
// when the test ends.
func newTestState(t testing.TB, m *obs.Metrics) *State {
	t.Helper()
	s := NewState(m)
	s.src = &pcgSource{pcg: rand.NewPCG(1, 2)}
	t.Cleanup(s.Close)
	return s
}

func mustBuild(t testing.TB, s *State, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := s.Build(cfg)
	if err != nil {
		t.Fatalf("Build(%q) error: %v", cfg.ID, err)
	}
	return p
}

// weighted builds endpoint configs 127.0.0.1:10001, :10002, ... with the
// given weights; nothing listens there, balancer tests never dial.
func weighted(weights ...int) []EndpointConfig {
	eps := make([]EndpointConfig, len(weights))
	for i, w := range weights {
		eps[i] = EndpointConfig{Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(10001+i)), Weight: w}
	}
	return eps
}

// connWatch records the server-side state of every connection of a test
// server, to observe what the client transport does with its connections.
type connWatch struct {
	mu     sync.Mutex
	states map[net.Conn]http.ConnState
	opened int
}

func (w *connWatch) hook(c net.Conn, s http.ConnState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s == http.StateNew {
		w.opened++
	}
	w.states[c] = s
}

// count returns how many connections are in state s now, and how many were
// ever opened.
func (w *connWatch) count(s http.ConnState) (n, opened int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.states {
		if st == s {
			n++
		}
	}
	return n, w.opened
}

// newWatchedServer starts a test server on 127.0.0.1 whose connections are
// recorded. It speaks HTTP/1.1, or only h2c when proto is H2C.
func newWatchedServer(t testing.TB, proto Protocol, h http.Handler) (*httptest.Server, *connWatch) {
	t.Helper()
	w := &connWatch{states: make(map[net.Conn]http.ConnState)}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = w.hook
	if proto == H2C {
		ts.Config.Protocols = new(http.Protocols)
		ts.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, w
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// okHandler answers 200 "ok".
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
}
