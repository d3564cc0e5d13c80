package acme

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestSlogCore(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	zl := zap.New(newSlogCore(h)).Named("obtain").With(zap.String("identifier", "a.example.com"))
	tests := []struct {
		log  func(msg string, fields ...zap.Field)
		want string // "" when dropped
	}{
		{zl.Debug, ""},
		{zl.Info, `level=INFO msg=m logger=certmagic.obtain identifier=a.example.com n=1`},
		{zl.Warn, `level=WARN msg=m logger=certmagic.obtain identifier=a.example.com n=1`},
		{zl.Error, `level=WARN msg=m logger=certmagic.obtain identifier=a.example.com n=1`},
	}
	for _, tt := range tests {
		buf.Reset()
		tt.log("m", zap.Int("n", 1))
		if got := strings.TrimSpace(buf.String()); got != tt.want {
			t.Errorf("logged %q, want %q", got, tt.want)
		}
	}

	buf.Reset()
	quiet := zap.New(newSlogCore(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	quiet.Info("dropped")
	if buf.Len() != 0 {
		t.Errorf("info through a warn-level handler logged %q, want nothing", buf.String())
	}
}
