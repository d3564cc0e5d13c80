package tracing

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestExportURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"},
		{"https://collector.example.com", "https://collector.example.com/v1/traces"},
		{"http://collector:4318/v1/traces", "http://collector:4318/v1/traces"},
		{"https://gateway.example.com/otlp/", "https://gateway.example.com/otlp/v1/traces"},
		{"http://[::1]:4318", "http://[::1]:4318/v1/traces"},
	}
	for _, tt := range tests {
		u, err := exportURL(tt.in)
		if err != nil {
			t.Errorf("exportURL(%q) error: %v", tt.in, err)
			continue
		}
		if got := u.String(); got != tt.want {
			t.Errorf("exportURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// traceIDLow returns a trace id whose low 8 bytes are v, the part the
// ratio sampler reads.
func traceIDLow(v uint64) trace.TraceID {
	var id trace.TraceID
	id[0] = 1
	binary.BigEndian.PutUint64(id[8:], v)
	return id
}

func TestRatioSampler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ratio float64
		low   uint64
		want  sdktrace.SamplingDecision
	}{
		{0, 0, sdktrace.Drop},
		{1, ^uint64(0), sdktrace.RecordAndSample},
		{0.5, 0, sdktrace.RecordAndSample},
		{0.5, 1<<63 - 2, sdktrace.RecordAndSample}, // >>1 is just below 2^62
		{0.5, 1 << 63, sdktrace.Drop},              // >>1 is 2^62, the bound
		{0.5, ^uint64(0), sdktrace.Drop},
	}
	for _, tt := range tests {
		s := newRatioSampler(tt.ratio)
		got := s.ShouldSample(sdktrace.SamplingParameters{TraceID: traceIDLow(tt.low)}).Decision
		if got != tt.want {
			t.Errorf("ratio %v, trace id low %#x: decision %v, want %v", tt.ratio, tt.low, got, tt.want)
		}
	}

	// Over many random ids the sampled fraction is the ratio.
	s := newRatioSampler(0.25)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	sampled := 0
	for range n {
		if s.ShouldSample(sdktrace.SamplingParameters{TraceID: traceIDLow(rng.Uint64())}).Decision == sdktrace.RecordAndSample {
			sampled++
		}
	}
	if got := float64(sampled) / n; got < 0.23 || got > 0.27 {
		t.Errorf("ratio 0.25 sampled %v of random trace ids, want about 0.25", got)
	}
	if got, want := s.Description(), "KeelRatio{0.25}"; got != want {
		t.Errorf("Description() = %q, want %q", got, want)
	}
}
