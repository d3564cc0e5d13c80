package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// specFields are the access-log keys of SPEC section 9.
var specFields = []string{
	"timestamp", "request_id", "method", "path", "host", "route", "pool",
	"endpoint", "status", "duration_ms", "upstream_duration_ms", "retries",
	"cache", "breaker_state", "canary_variant", "bytes_in", "bytes_out",
	"client_ip", "error",
}

func sampleRecord() AccessRecord {
	return AccessRecord{
		Time:              time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.FixedZone("CET", 3600)),
		RequestID:         "req-1",
		Method:            "GET",
		Path:              "/api/v1/items?REDACTED",
		Host:              "api.example.com",
		Route:             "api",
		Pool:              "api-v2",
		Endpoint:          "10.0.1.10:8000",
		Status:            502,
		Duration:          12345678 * time.Nanosecond,
		UpstreamDuration:  9 * time.Millisecond,
		Retries:           2,
		Cache:             "miss",
		BreakerState:      "closed",
		CanaryVariant:     "canary",
		BytesIn:           17,
		BytesOut:          1 << 40,
		ClientIP:          "192.0.2.1",
		ClientCertSubject: "CN=alice,O=Example",
		Error:             "upstream_reset",
		ConfigVersion:     "0123456789abcdef",
	}
}

func decodeLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("line %q is not JSON: %v", line, err)
	}
	return got
}

func TestAppendJSONFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		rec  AccessRecord
		want map[string]string // key -> JSON text of the value
	}{
		{
			desc: "every field set",
			rec:  sampleRecord(),
			want: map[string]string{
				"timestamp": `"2026-03-04T04:06:07.890123Z"`, "request_id": `"req-1"`,
				"method": `"GET"`, "path": `"/api/v1/items?REDACTED"`, "host": `"api.example.com"`,
				"route": `"api"`, "pool": `"api-v2"`, "endpoint": `"10.0.1.10:8000"`,
				"status": `502`, "duration_ms": `12.345`, "upstream_duration_ms": `9.000`,
				"retries": `2`, "cache": `"miss"`, "breaker_state": `"closed"`,
				"canary_variant": `"canary"`, "bytes_in": `17`, "bytes_out": `1099511627776`,
				"client_ip": `"192.0.2.1"`, "client_cert_subject": `"CN=alice,O=Example"`, "error": `"upstream_reset"`, "config_version": `"0123456789abcdef"`,
			},
		},
		{
			desc: "zero record",
			rec:  AccessRecord{},
			want: map[string]string{
				"timestamp": `"0001-01-01T00:00:00Z"`, "request_id": `""`, "method": `""`,
				"path": `""`, "host": `""`, "route": `""`, "pool": `""`, "endpoint": `""`,
				"status": `0`, "duration_ms": `0.000`, "upstream_duration_ms": `0.000`,
				"retries": `0`, "cache": `""`, "breaker_state": `""`, "canary_variant": `""`,
				"bytes_in": `0`, "bytes_out": `0`, "client_ip": `""`, "client_cert_subject": `""`, "error": `""`, "config_version": `""`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			line := tt.rec.AppendJSON(nil)
			var got map[string]json.RawMessage
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("AppendJSON() = %s, not JSON: %v", line, err)
			}
			// The SPEC keys plus config_version and client_cert_subject.
			keys := append(specFields[:len(specFields):len(specFields)], "config_version", "client_cert_subject")
			if len(got) != len(keys) {
				t.Errorf("AppendJSON() has %d keys, want %d: %s", len(got), len(keys), line)
			}
			for _, k := range keys {
				if string(got[k]) != tt.want[k] {
					t.Errorf("AppendJSON()[%q] = %s, want %s", k, got[k], tt.want[k])
				}
			}
		})
	}
}

func TestAppendJSONAppends(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	prefix := []byte("prefix ")
	got := rec.AppendJSON(prefix)
	if want := "prefix " + string(rec.AppendJSON(nil)); string(got) != want {
		t.Errorf("AppendJSON(%q) = %q, want %q", prefix, got, want)
	}
}

func TestAppendMillis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000"},
		{999 * time.Nanosecond, "0.000"},
		{time.Microsecond, "0.001"},
		{1500 * time.Microsecond, "1.500"},
		{12345678 * time.Nanosecond, "12.345"},
		{3 * time.Second, "3000.000"},
		{-2500 * time.Microsecond, "-2.500"},
		{-time.Nanosecond, "0.000"},
	}
	for _, tt := range tests {
		if got := string(appendMillis(nil, tt.d)); got != tt.want {
			t.Errorf("appendMillis(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

// TestAppendJSONEscaping feeds hostile strings through every string field
// and checks that the line stays one valid JSON object that decodes to what
// encoding/json would have produced.
func TestAppendJSONEscaping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   string
		want string // decoded value
	}{
		{"plain", "/a/b", "/a/b"},
		{"quotes", `say "hi"`, `say "hi"`},
		{"backslash", `C:\path\`, `C:\path\`},
		{"forged line", "x\n{\"status\":200}\r\n", "x\n{\"status\":200}\r\n"},
		{"nul and controls", "a\x00b\x01\x1f\t\b\f\x7f", "a\x00b\x01\x1f\t\b\f\x7f"},
		{"escape sequence", "\x1b[31mred", "\x1b[31mred"},
		{"html kept", "<script>&</script>", "<script>&</script>"},
		{"valid utf-8", "héllo, 世界 🎉", "héllo, 世界 🎉"},
		{"invalid byte", "a\xffb", "a\uFFFDb"},
		{"truncated rune", "ok\xe4\xb8", "ok\uFFFD\uFFFD"},
		{"surrogate half", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"line separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			line := hostileRecord(tt.in).AppendJSON(nil)
			checkHostileLine(t, tt.in, line)
			got := decodeLine(t, line)
			for _, k := range stringFields {
				if got[k] != tt.want {
					t.Errorf("decoded[%q] = %q, want %q", k, got[k], tt.want)
				}
			}
		})
	}
}

var stringFields = []string{
	"request_id", "method", "path", "host", "route", "pool", "endpoint",
	"cache", "breaker_state", "canary_variant", "client_ip", "error",
}

func hostileRecord(s string) *AccessRecord {
	return &AccessRecord{
		RequestID: s, Method: s, Path: s, Host: s, Route: s, Pool: s, Endpoint: s,
		Cache: s, BreakerState: s, CanaryVariant: s, ClientIP: s, Error: s,
	}
}

// checkHostileLine checks the invariants a log consumer relies on: one
// line, valid JSON, every string equal to encoding/json's rendering.
func checkHostileLine(t *testing.T, in string, line []byte) {
	t.Helper()
	if i := bytes.IndexFunc(line, func(r rune) bool { return r < 0x20 }); i >= 0 {
		t.Errorf("AppendJSON(%q) has raw control byte %#x at %d: %q", in, line[i], i, line)
	}
	if !json.Valid(line) {
		t.Fatalf("AppendJSON(%q) = %q, not valid JSON", in, line)
	}
	std, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal(%q): %v", in, err)
	}
	var want string
	if err := json.Unmarshal(std, &want); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", std, err)
	}
	var got struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("json.Unmarshal(%q): %v", line, err)
	}
	if got.Path != want || got.Error != want {
		t.Errorf("AppendJSON(%q) decodes to path %q, error %q, want %q as encoding/json", in, got.Path, got.Error, want)
	}
}

func FuzzAppendJSON(f *testing.F) {
	// Seeds: each class of byte appendString treats specially.
	for _, s := range []string{"", "/plain", "\"\\", "\n\r\t\x00", "\xff\xfe", "\u2028", "世界", "\xe4\xb8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkHostileLine(t, s, hostileRecord(s).AppendJSON(nil))
	})
}

func TestAppendJSONAllocs(t *testing.T) {
	rec := sampleRecord()
	rec.Path = "/with \"escapes\"\n and \xff invalid"
	buf := make([]byte, 0, 4096)
	got := testing.AllocsPerRun(100, func() {
		buf = rec.AppendJSON(buf[:0])
	})
	if got != 0 {
		t.Errorf("AppendJSON allocs per run = %v, want 0", got)
	}
}

// syncBuffer is a bytes.Buffer safe for Run's writes racing the test's
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := bytes.Clone(b.buf.Bytes())
	b.mu.Unlock()
	var out []map[string]any
	// Not bufio.Scanner: its 64 KiB token limit is below the longest line
	// the huge-record test writes.
	for line := range bytes.Lines(data) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("line %q lacks its newline", line)
		}
		out = append(out, decodeLine(t, line))
	}
	return out
}

// runLog starts l.Run and returns a stop function that cancels it and
// waits for it to return, reporting its error.
func runLog(t *testing.T, l *AccessLog) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancel")
		}
	}
}

func TestAccessLogWritesAndFlushesWhenIdle(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	l := NewAccessLog(&out, 16, nil)
	stop := runLog(t, l)
	defer stop()

	rec := sampleRecord()
	l.Log(&rec)
	rec.RequestID = "changed after Log" // Log must have copied the record
	// The queue is now empty, so Run must flush without waiting for more
	// records or for cancel.
	deadline := time.Now().Add(5 * time.Second)
	for len(out.lines(t)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	lines := out.lines(t)
	if len(lines) != 1 {
		t.Fatalf("lines written = %d, want 1", len(lines))
	}
	if got, want := lines[0]["request_id"], "req-1"; got != want {
		t.Errorf("request_id = %v, want %v", got, want)
	}
}

func TestAccessLogRunDrainsOnCancel(t *testing.T) {
	t.Parallel()
	const n = 50
	var out syncBuffer
	l := NewAccessLog(&out, n, nil)
	// Queued before Run starts, and ctx already cancelled: Run must still
	// write all of them, in order.
	for i := range n {
		rec := AccessRecord{Status: 200 + i}
		l.Log(&rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	lines := out.lines(t)
	if len(lines) != n {
		t.Fatalf("lines written = %d, want %d", len(lines), n)
	}
	for i, line := range lines {
		if got, want := line["status"], json.Number(strconv.Itoa(200+i)); got != want {
			t.Errorf("line %d status = %v, want %v", i, got, want)
		}
	}
	if got := l.Dropped(); got != 0 {
		t.Errorf("Dropped() = %d, want 0", got)
	}

	// After Run returned, Log drops instead of queueing forever.
	rec := sampleRecord()
	l.Log(&rec)
	if got := l.Dropped(); got != 1 {
		t.Errorf("Log after Run returned: Dropped() = %d, want 1", got)
	}
	if err := l.Run(context.Background()); err == nil {
		t.Error("second Run() = nil, want an error")
	}
}

// stuckWriter blocks every Write until release is closed, as a full pipe
// to a dead log collector would.
type stuckWriter struct {
	entered chan struct{} // closed on the first Write
	once    sync.Once
	release chan struct{}
	out     syncBuffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.out.Write(p)
}

func TestAccessLogNeverBlocks(t *testing.T) {
	t.Parallel()
	const capacity, calls = 16, 10000
	w := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var onDrop atomic.Int64
	l := NewAccessLog(w, capacity, func(n int) { onDrop.Add(int64(n)) })
	stop := runLog(t, l)

	rec := sampleRecord()
	l.Log(&rec)
	select {
	case <-w.entered: // Run is now stuck in Write and consumes nothing.
	case <-time.After(10 * time.Second):
		t.Fatal("Run never wrote the first record")
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range calls {
			l.Log(&rec)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Log blocked behind a stuck writer")
	}
	if got, want := l.Dropped(), uint64(calls-capacity); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	if got, want := onDrop.Load(), int64(calls-capacity); got != want {
		t.Errorf("onDrop total = %d, want %d", got, want)
	}

	close(w.release)
	stop()
	if got, want := len(w.out.lines(t)), 1+capacity; got != want {
		t.Errorf("lines written after release = %d, want %d", got, want)
	}
}

func TestAccessLogConcurrent(t *testing.T) {
	t.Parallel()
	const workers, each = 8, 500
	var out syncBuffer
	l := NewAccessLog(&out, 64, nil)
	stop := runLog(t, l)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec := sampleRecord()
				rec.Retries = w
				rec.Status = i
				l.Log(&rec)
			}
		})
	}
	wg.Wait()
	stop()
	lines := out.lines(t)
	if got, want := uint64(len(lines))+l.Dropped(), uint64(workers*each); got != want {
		t.Errorf("written %d + dropped %d = %d, want %d", len(lines), l.Dropped(), got, want)
	}
}

// failWriter fails every write, as a closed stdout would.
type failWriter struct{ calls atomic.Int64 }

func (w *failWriter) Write(p []byte) (int, error) {
	w.calls.Add(1)
	return 0, errors.New("broken pipe")
}

func TestAccessLogWriteErrorCountsDrops(t *testing.T) {
	t.Parallel()
	const n = 5
	w := &failWriter{}
	var onDrop atomic.Int64
	l := NewAccessLog(w, n, func(k int) { onDrop.Add(int64(k)) })
	for range n {
		rec := sampleRecord()
		l.Log(&rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil despite write errors", err)
	}
	if got := l.Dropped(); got != n {
		t.Errorf("Dropped() = %d, want %d", got, n)
	}
	if got := onDrop.Load(); got != n {
		t.Errorf("onDrop total = %d, want %d", got, n)
	}
	if w.calls.Load() == 0 {
		t.Error("writer never called")
	}
}

// TestAccessLogHugeRecord covers a line longer than the batch buffer,
// which bufio writes straight through.
func TestAccessLogHugeRecord(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	l := NewAccessLog(&out, 4, nil)
	small, huge := sampleRecord(), sampleRecord()
	huge.Path = "/" + strings.Repeat("x", 2*accessLogBufferSize)
	l.Log(&small)
	l.Log(&huge)
	l.Log(&small)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	lines := out.lines(t)
	if len(lines) != 3 {
		t.Fatalf("lines written = %d, want 3", len(lines))
	}
	if got := lines[1]["path"]; got != huge.Path {
		t.Errorf("huge line path has %d bytes, want %d", len(got.(string)), len(huge.Path))
	}
}

func TestNilAccessLog(t *testing.T) {
	t.Parallel()
	var l *AccessLog
	rec := sampleRecord()
	l.Log(&rec)
	if got := l.Dropped(); got != 0 {
		t.Errorf("nil AccessLog: Dropped() = %d, want 0", got)
	}
	if err := l.Run(context.Background()); err != nil {
		t.Errorf("nil AccessLog: Run() = %v, want nil", err)
	}
	NewAccessLog(&syncBuffer{}, 1, nil).Log(nil) // a nil record is ignored
}

func TestNewAccessLogCapacity(t *testing.T) {
	t.Parallel()
	tests := []struct{ capacity, want int }{
		{-1, DefaultAccessLogCapacity},
		{0, DefaultAccessLogCapacity},
		{1, 1},
		{100, 100},
	}
	for _, tt := range tests {
		if got := cap(NewAccessLog(&syncBuffer{}, tt.capacity, nil).queue); got != tt.want {
			t.Errorf("NewAccessLog(capacity %d): queue capacity = %d, want %d", tt.capacity, got, tt.want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	rec := sampleRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = rec.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkLog(b *testing.B) {
	l := NewAccessLog(discard{}, DefaultAccessLogCapacity, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := sampleRecord()
		for pb.Next() {
			l.Log(&rec)
		}
	})
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "drops/op")
}

// discard is io.Discard without its ReadFrom fast path, so the benchmark
// measures an ordinary writer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
