package acme

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that hands certmagic's zap records to an
// slog.Handler, so that its logs end up where the proxy's go. Certmagic
// is chatty at debug level (every handshake), so debug is dropped; its
// info stays info, and its warnings and errors become warnings: the
// Manager logs the failures that matter itself, once, as errors.
type slogCore struct {
	h      slog.Handler
	fields []zapcore.Field // from With, encoded at Write
}

var _ zapcore.Core = (*slogCore)(nil)

func newSlogCore(h slog.Handler) *slogCore { return &slogCore{h: h} }

// slogLevel maps a zap level; ok is false for levels that are dropped.
func slogLevel(l zapcore.Level) (level slog.Level, ok bool) {
	switch {
	case l < zapcore.InfoLevel:
		return 0, false
	case l == zapcore.InfoLevel:
		return slog.LevelInfo, true
	default:
		return slog.LevelWarn, true
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	level, ok := slogLevel(l)
	// Certmagic's logs are not tied to a request, hence Background.
	return ok && c.h.Enabled(context.Background(), level)
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level, _ := slogLevel(e.Level)
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	// Certmagic names some loggers ".acme_client" (its root has no name).
	logger := "certmagic"
	if name := strings.TrimLeft(e.LoggerName, "."); name != "" {
		logger += "." + name
	}
	r.AddAttrs(slog.String("logger", logger))
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	// The map loses zap's field order; sorted keys at least keep lines
	// comparable.
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		r.AddAttrs(slog.Any(k, enc.Fields[k]))
	}
	return c.h.Handle(context.Background(), r)
}

func (*slogCore) Sync() error { return nil }
