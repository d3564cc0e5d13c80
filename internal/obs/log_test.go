package obs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level   string
		wantErr bool
		// wantOut lists, for messages logged at debug, info, warn and
		// error, whether each must appear.
		wantOut [4]bool
	}{
		{level: "debug", wantOut: [4]bool{true, true, true, true}},
		{level: "info", wantOut: [4]bool{false, true, true, true}},
		{level: "warn", wantOut: [4]bool{false, false, true, true}},
		{level: "error", wantOut: [4]bool{false, false, false, true}},
		{level: "WARN", wantOut: [4]bool{false, false, true, true}},
		{level: "", wantErr: true},
		{level: "warning", wantErr: true},
		{level: "info+2", wantErr: true},
		{level: "trace", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger, err := NewLogger(&buf, true, tt.level)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewLogger(%q) error = %v, want error %v", tt.level, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			logger.Debug("m-debug")
			logger.Info("m-info")
			logger.Warn("m-warn")
			logger.Error("m-error")
			for i, msg := range []string{"m-debug", "m-info", "m-warn", "m-error"} {
				if got := strings.Contains(buf.String(), `"msg":"`+msg+`"`); got != tt.wantOut[i] {
					t.Errorf("level %q: %s logged = %v, want %v", tt.level, msg, got, tt.wantOut[i])
				}
			}
		})
	}
}

func TestNewLoggerFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		json     bool
		wantJSON bool
	}{
		{"json", true, true},
		{"text", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger, err := NewLogger(&buf, tt.json, "info")
			if err != nil {
				t.Fatalf("NewLogger() error = %v", err)
			}
			logger.Info("hello", "route", "api")
			line := bytes.TrimSpace(buf.Bytes())
			if got := json.Valid(line); got != tt.wantJSON {
				t.Errorf("json=%v: output %q is JSON = %v, want %v", tt.json, line, got, tt.wantJSON)
			}
			if !bytes.Contains(line, []byte("hello")) || !bytes.Contains(line, []byte("api")) {
				t.Errorf("output %q lacks the message or its attribute", line)
			}
		})
	}
}

func TestNewLoggerNilWriter(t *testing.T) {
	t.Parallel()
	if _, err := NewLogger(nil, true, "info"); err == nil {
		t.Error("NewLogger(nil writer) error = nil, want an error")
	}
}
