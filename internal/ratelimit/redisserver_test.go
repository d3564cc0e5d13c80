package ratelimit

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a throwaway redis-server on a free loopback port, without
// persistence, killed when the test ends. It can be stopped, paused and
// started again on the same port to play an outage.
type redisServer struct {
	t    testing.TB
	bin  string
	addr string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *bytes.Buffer // written by the process; read only after done fired
	done chan error
}

// startRedis starts a fresh server. A missing redis-server fails the test:
// the global scope must not go untested because a machine lacks it.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (%v): run scripts/test-deps.sh (Debian package redis-server)", err)
	}
	s := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	var lastErr error
	for range 3 { // another process may take the free port first
		s.addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatal(lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server on s.addr and waits until it answers PING.
func (s *redisServer) start() error {
	_, port, _ := net.SplitHostPort(s.addr)
	// --bind: without it Redis listens on every interface. --port 0 would
	// mean "no TCP", hence the reserved port.
	cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")
	log := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies (a -timeout panic), the server dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.log, s.done = cmd, log, done
	s.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server exited early: %v\n%s", err, log)
		default:
		}
		if ping(s.addr) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("redis-server not ready in 10s\n%s", log)
}

// stop kills the server (SIGKILL also ends a paused one) and waits for it.
func (s *redisServer) stop() {
	s.mu.Lock()
	cmd, done, log := s.cmd, s.done, s.log
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	if s.t.Failed() {
		s.t.Logf("redis-server log:\n%s", log)
	}
}

// restart starts the server again on the same port after stop.
func (s *redisServer) restart() {
	s.t.Helper()
	var err error
	for range 20 { // the old socket may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server on %s: %v", s.addr, err)
}

// signal sends sig (SIGSTOP, SIGCONT) to the running server.
func (s *redisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redis-server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// ping speaks just enough RESP to see +PONG, without the client under test.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func itoa(n int) string { return strconv.Itoa(n) }
