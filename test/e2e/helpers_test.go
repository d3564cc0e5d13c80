package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// proxyBin is the proxy binary built once by TestMain.
var proxyBin string

// proxySlots bounds the proxy processes running at once: the machine has
// two shared cores.
var proxySlots = make(chan struct{}, 4)

// fastShutdown keeps test proxies from waiting the default 10s drain delay
// when they are stopped.
const fastShutdown = "shutdown: {drain_delay: 0s, grace_period: 2s}\n"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keel-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: module root:", err)
		return 1
	}
	proxyBin = filepath.Join(dir, "proxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/proxy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/proxy: %v\n%s", err, out)
		return 1
	}
	if code := m.Run(); code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
		return 1
	}
	return 0
}

// moduleRoot finds the directory of go.mod, falling back to ../.. (this
// package lives in test/e2e).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	return filepath.Abs(filepath.Join("..", ".."))
}

// syncBuffer collects a child's output; safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one run of the proxy binary.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed once the process has been waited for
}

func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, args...)
}

// startProcEnv starts the binary with env added to the environment.
func startProcEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(proxyBin, args...), stdout: new(syncBuffer),
		stderr: new(syncBuffer), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		defer close(p.done)
		p.cmd.Wait()
	}()
	return p
}

// wait waits up to timeout for the process to exit and returns its exit
// code (-1 when a signal killed it).
func (p *proc) wait(timeout time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// runCmd runs the binary to completion and returns its outputs and exit
// code.
func runCmd(t testing.TB, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startProc(t, args...)
	code, ok := p.wait(timeout)
	if !ok {
		p.kill()
		t.Fatalf("proxy %v did not exit within %v; stderr:\n%s", args, timeout, p.stderr)
	}
	return p.stdout.String(), p.stderr.String(), code
}

// proxyServer is a running proxy with its listeners.
type proxyServer struct {
	*proc
	data    string // data-plane host:port
	admin   string // admin host:port
	cfgPath string
	client  *http.Client // for the admin listener
}

// startProxy writes cfg (YAML) to a temp file and starts the proxy on it.
// An empty cfg starts the proxy without -config-file.
func startProxy(t testing.TB, cfg string, extra ...string) *proxyServer {
	t.Helper()
	path := ""
	if cfg != "" {
		path = filepath.Join(t.TempDir(), "proxy.yaml")
		writeFileAtomic(t, path, cfg)
	}
	return startProxyArgs(t, nil, path, extra...)
}

// startProxyArgs starts "proxy <pre...> -http-addr A -admin-addr B
// [-config-file F] <extra...>" and waits until /ready answers 200. It
// retries with new ports when one was taken in the meantime.
func startProxyArgs(t testing.TB, pre []string, cfgPath string, extra ...string) *proxyServer {
	t.Helper()
	return startProxyFull(t, nil, pre, cfgPath, extra...)
}

// startProxyEnv is startProxyArgs with env added to the environment.
func startProxyEnv(t testing.TB, env []string, cfgPath string, extra ...string) *proxyServer {
	t.Helper()
	return startProxyFull(t, env, nil, cfgPath, extra...)
}

func startProxyFull(t testing.TB, env, pre []string, cfgPath string, extra ...string) *proxyServer {
	t.Helper()
	proxySlots <- struct{}{}
	t.Cleanup(func() { <-proxySlots })
	// Generous: under -race with other test packages running, a loaded
	// proxy on two cores can take seconds to answer the admin listener.
	admin := newClient(t, 30*time.Second)
	for attempt := 0; ; attempt++ {
		data, adm := freeAddr(t), freeAddr(t)
		args := append(append([]string(nil), pre...), "-http-addr", data, "-admin-addr", adm)
		if cfgPath != "" {
			args = append(args, "-config-file", cfgPath)
		}
		args = append(args, extra...)
		p := &proxyServer{proc: startProcEnv(t, env, args...), data: data, admin: adm, cfgPath: cfgPath, client: admin}
		err := p.waitReady(10 * time.Second)
		if err == nil {
			t.Cleanup(func() {
				p.kill()
				if t.Failed() {
					t.Logf("proxy %v stderr (tail):\n%s", args, tail(p.stderr.String(), 40))
				}
			})
			return p
		}
		p.kill()
		if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("proxy %v not ready: %v\nstderr:\n%s", args, err, p.stderr)
	}
}

func (p *proxyServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited with code %d", p.cmd.ProcessState.ExitCode())
		}
		resp, err := p.client.Get("http://" + p.admin + "/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /ready = %d", resp.StatusCode)
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %v: %v", timeout, last)
}

// url returns the data-plane URL of path.
func (p *proxyServer) url(path string) string { return "http://" + p.data + path }

// readyVersion returns the version /ready reports ("" when none).
func (p *proxyServer) readyVersion(t testing.TB) (int, string) {
	t.Helper()
	resp, err := p.client.Get("http://" + p.admin + "/ready")
	if err != nil {
		t.Fatalf("GET /ready: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	return resp.StatusCode, body.Version
}

// writeConfig atomically replaces the proxy's config file.
func (p *proxyServer) writeConfig(t testing.TB, cfg string) {
	t.Helper()
	writeFileAtomic(t, p.cfgPath, cfg)
}

// accessLog returns the access-log records written so far (stdout lines
// that are JSON objects with a request_id).
func (p *proxyServer) accessLog() []map[string]any {
	var recs []map[string]any
	for line := range strings.SplitSeq(p.stdout.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if _, ok := m["request_id"]; ok {
			recs = append(recs, m)
		}
	}
	return recs
}

// accessByID waits for the access-log records of request id and returns
// them all (the caller checks there is exactly one).
func (p *proxyServer) accessByID(t testing.TB, id string) []map[string]any {
	t.Helper()
	var got []map[string]any
	eventually(t, 3*time.Second, func() error {
		got = got[:0]
		for _, r := range p.accessLog() {
			if r["request_id"] == id {
				got = append(got, r)
			}
		}
		if len(got) == 0 {
			return fmt.Errorf("no access-log line with request_id %q; stdout:\n%s", id, tail(p.stdout.String(), 10))
		}
		return nil
	})
	// A duplicate would be written at the same time; give it a flush.
	time.Sleep(250 * time.Millisecond)
	got = got[:0]
	for _, r := range p.accessLog() {
		if r["request_id"] == id {
			got = append(got, r)
		}
	}
	return got
}

// sample is one Prometheus sample.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics scrapes the admin /metrics endpoint.
func (p *proxyServer) metrics(t testing.TB) []sample {
	t.Helper()
	resp, err := p.client.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	s, err := parseMetrics(string(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return s
}

// parseMetrics parses the Prometheus text format (enough of it for our
// output: no timestamps needed, escaped label values handled).
func parseMetrics(text string) ([]sample, error) {
	var out []sample
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		s.name = line[:i]
		rest := line[i:]
		if rest[0] == '{' {
			var err error
			if rest, err = parseLabels(rest[1:], s.labels); err != nil {
				return nil, fmt.Errorf("line %q: %v", line, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("value in %q: %v", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, nil
}

// parseLabels parses `a="x",b="y"}` into m and returns what follows '}'.
func parseLabels(s string, m map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", errors.New("bad label")
		}
		name := s[:eq]
		s = s[eq+2:]
		var val strings.Builder
		for {
			if s == "" {
				return "", errors.New("unterminated label value")
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\\' && s != "" {
				switch s[0] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[0])
				}
				s = s[1:]
				continue
			}
			val.WriteByte(c)
		}
		m[name] = val.String()
	}
}

// findSamples returns the samples of name whose labels include labels.
func findSamples(all []sample, name string, labels map[string]string) []sample {
	var out []sample
	for _, s := range all {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range labels {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// sumSamples sums the matching samples (0 when none match).
func sumSamples(all []sample, name string, labels map[string]string) float64 {
	var v float64
	for _, s := range findSamples(all, name, labels) {
		v += s.value
	}
	return v
}

// eventually retries f every 20ms until it returns nil or timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFileAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("rename %s: %v", tmp, err)
	}
}

// newClient returns a client with its own connection pool, closed when the
// test ends. timeout 0 means none.
func newClient(t testing.TB, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, c *http.Client, method, url, host string, hdr http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("NewRequest(%s %s): %v", method, url, err)
	}
	if host != "" {
		req.Host = host
	}
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// errorBody is the JSON body of a proxy-generated error (SPEC section 6).
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// checkProxyError asserts a proxy-generated error: status, X-Proxy-Error,
// X-Request-Id and the JSON body.
func checkProxyError(t testing.TB, resp *http.Response, body []byte, wantStatus int, wantCategory string) {
	t.Helper()
	if resp.StatusCode != wantStatus {
		t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, wantStatus, body)
	}
	if got := resp.Header.Get("X-Proxy-Error"); got != wantCategory {
		t.Errorf("X-Proxy-Error = %q, want %q", got, wantCategory)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Errorf("error body %q is not JSON: %v", body, err)
		return
	}
	if eb.Error != wantCategory {
		t.Errorf("body error = %q, want %q", eb.Error, wantCategory)
	}
	if eb.Message == "" {
		t.Errorf("body message is empty, want a message")
	}
	if id := resp.Header.Get("X-Request-Id"); eb.RequestID == "" || eb.RequestID != id {
		t.Errorf("body request_id = %q, X-Request-Id = %q, want equal and non-empty", eb.RequestID, id)
	}
}

// echoReply is what an echo upstream reports about the request it got.
type echoReply struct {
	Upstream string      `json:"upstream"`
	Method   string      `json:"method"`
	URI      string      `json:"uri"`
	Host     string      `json:"host"`
	Proto    string      `json:"proto"`
	Header   http.Header `json:"header"`
	Trailer  http.Header `json:"trailer"`
	Body     string      `json:"body"`
	BodyLen  int64       `json:"body_len"`
}

// upstream is a test upstream (an httptest server) that counts its
// requests and names itself in X-Upstream.
type upstream struct {
	*httptest.Server
	name string
	addr string
	hits atomic.Int64
}

// newUpstream starts an upstream running h, closed when the test ends.
func newUpstream(t testing.TB, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		w.Header().Set("X-Upstream", name)
		h(w, r)
	}))
	u.addr = u.Listener.Addr().String()
	t.Cleanup(u.Close)
	return u
}

// newEcho starts an upstream that answers every request with an echoReply.
func newEcho(t testing.TB, name string) *upstream {
	t.Helper()
	return newUpstream(t, name, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rep := echoReply{Upstream: name, Method: r.Method, URI: r.RequestURI, Host: r.Host,
			Proto: r.Proto, Header: r.Header, Trailer: r.Trailer, BodyLen: int64(len(b))}
		if len(b) <= 64<<10 {
			rep.Body = string(b)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	})
}

func decodeEcho(t testing.TB, body []byte) echoReply {
	t.Helper()
	var rep echoReply
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("upstream reply %q is not an echo reply: %v", body, err)
	}
	return rep
}

// rawServer is a TCP upstream with a hand-written behaviour.
type rawServer struct {
	ln    net.Listener
	addr  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// newRawServer accepts connections on loopback and runs handle on each;
// everything is closed and waited for when the test ends.
func newRawServer(t testing.TB, handle func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &rawServer{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// readRequestHead reads one request (and its body) from br.
func readRequestHead(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	return req, nil
}

// rawResult is what a raw TCP client saw.
type rawResult struct {
	resp   *http.Response
	body   []byte
	bodyEr error
	raw    []byte // every byte received
	closed bool   // the proxy closed the connection after the response
}

// rawRoundTrip writes req verbatim to addr and reads one response.
func rawRoundTrip(t testing.TB, addr, req string) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v (got %q)", firstLine(req), err, raw.Bytes())
	}
	var res rawResult
	res.resp = resp
	res.body, res.bodyEr = io.ReadAll(resp.Body)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	res.closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	res.raw = raw.Bytes()
	return res
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// pattern is a deterministic, non-repeating-looking byte stream of n
// bytes: 64 KiB blocks of a fixed mix, each stamped with its index, so
// lost, duplicated or reordered blocks change the checksum.
type pattern struct {
	n, off int64
	block  []byte
}

func newPattern(n int64) *pattern {
	b := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return &pattern{n: n, block: b}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	total := 0
	for len(b) > 0 && p.off < p.n {
		bs := int64(len(p.block))
		idx, in := p.off/bs, p.off%bs
		chunk := p.block[in:]
		if int64(len(chunk)) > p.n-p.off {
			chunk = chunk[:p.n-p.off]
		}
		n := copy(b, chunk)
		// Stamp the block index over the block's first 8 bytes.
		for i := 0; i < n && in+int64(i) < 8; i++ {
			b[i] = byte(idx >> (8 * (in + int64(i))))
		}
		b = b[n:]
		p.off += int64(n)
		total += n
	}
	return total, nil
}

// sumReader returns the length and CRC-32 of everything r yields.
func sumReader(r io.Reader) (int64, uint32, error) {
	h := crc32.NewIEEE()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	return n, h.Sum32(), err
}

// patternSum is the length and CRC-32 of newPattern(n).
func patternSum(n int64) (int64, uint32) {
	m, sum, _ := sumReader(newPattern(n))
	return m, sum
}

// vmHWM returns the peak resident set size of pid, from /proc.
func vmHWM(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
