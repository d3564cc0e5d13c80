package tracing

import (
	"encoding/binary"
	"math"
	"strconv"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ratioSampler samples a fraction of new traces by trace id, like the
// SDK's TraceIDRatioBased, but its ratio can change at run time: an apply
// of tracing.sample_ratio stores a new bound, and the next root span reads
// it. It decides root spans only; ParentBased wraps it so a parent's
// decision is followed.
//
// Deciding by trace id (not a coin flip) keeps the decision consistent
// with other TraceIDRatioBased samplers of the same ratio on the trace.
type ratioSampler struct {
	// bound is the sampling threshold on the trace id's low 63 bits:
	// sampled when they are below it.
	bound atomic.Uint64
	// ratio is the float64 bits of the ratio in force, for SampleRatio.
	ratio atomic.Uint64
}

func newRatioSampler(ratio float64) *ratioSampler {
	s := &ratioSampler{}
	s.set(ratio)
	return s
}

// set stores ratio, clamped to [0, 1]. Two stores are not one atomic
// change, but a reader seeing the bound of one ratio and the ratio of
// another only misreports SampleRatio for an instant.
func (s *ratioSampler) set(ratio float64) {
	switch {
	case math.IsNaN(ratio) || ratio <= 0:
		ratio = 0
	case ratio >= 1:
		ratio = 1
	}
	// At 1, 1<<63 is above every 63-bit value: all sampled. At 0 none is
	// below 0.
	s.bound.Store(uint64(ratio * (1 << 63)))
	s.ratio.Store(math.Float64bits(ratio))
}

func (s *ratioSampler) get() float64 {
	return math.Float64frombits(s.ratio.Load())
}

// ShouldSample implements sdktrace.Sampler with the algorithm of the SDK's
// TraceIDRatioBased: the low 8 bytes of the trace id, big-endian, shifted
// right by one, compared with ratio * 2^63.
func (s *ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.Drop
	if binary.BigEndian.Uint64(p.TraceID[8:16])>>1 < s.bound.Load() {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{
		Decision:   d,
		Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState(),
	}
}

// Description implements sdktrace.Sampler.
func (s *ratioSampler) Description() string {
	return "KeelRatio{" + strconv.FormatFloat(s.get(), 'g', -1, 64) + "}"
}

var _ sdktrace.Sampler = (*ratioSampler)(nil)
