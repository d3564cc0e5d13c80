package obs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns the logger for the proxy's own messages (start-up,
// config applies, health changes), which go to w (main passes stderr),
// apart from the access log on stdout. json selects slog's JSON handler,
// otherwise its text handler. level is debug, info, warn or error, in any
// case; anything else, the empty string included, is an error, so a typo
// in -log-level fails start-up instead of silently logging at info.
//
// The returned logger is safe for concurrent use; w must be safe for the
// concurrent writes slog makes (one Write per record, serialised by slog).
func NewLogger(w io.Writer, json bool, level string) (*slog.Logger, error) {
	if w == nil {
		return nil, errors.New("obs: nil log writer")
	}
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// parseLevel accepts exactly the four names of the -log-level flag.
// slog.Level.UnmarshalText is not used because it also takes offsets such
// as "info+2", which the flag does not promise.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("obs: log level %q: want debug, info, warn or error", s)
}
