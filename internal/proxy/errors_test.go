package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/keelproxy/keel/internal/upstream"
)

func TestClassify(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, cancel2 := context.WithCancelCause(context.Background())
	cancel2(errTimeout)

	tests := []struct {
		desc string
		ctx  context.Context
		err  error
		want Category
	}{
		{"dial error", live, &upstream.DialError{Address: "127.0.0.1:1", Err: syscall.ECONNREFUSED}, ErrConnectFailed},
		{"wrapped dial error", live, fmt.Errorf("rt: %w", &upstream.DialError{Err: syscall.ECONNREFUSED}), ErrConnectFailed},
		{"response header timeout", live, errors.New("net/http: timeout awaiting response headers"), ErrUpstreamTimeout},
		{"net timeout", live, os.ErrDeadlineExceeded, ErrUpstreamTimeout},
		{"reset", live, syscall.ECONNRESET, ErrUpstreamReset},
		{"eof", live, errors.New("EOF"), ErrUpstreamReset},
		{"client went away", gone, context.Canceled, ErrClientClosed},
		{"route timeout", timedOut, context.Canceled, ErrRequestTimeout},
		{"body too large", live, fmt.Errorf("write: %w", errBodyTooLarge), ErrRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []Category{ErrNoRoute, ErrMethodNotAllowed, ErrBadRequest, ErrRequestTooLarge,
		ErrTLSRequired, ErrConnectFailed, ErrUpstreamReset, ErrUpstreamTimeout, ErrRequestTimeout, ErrNoHealthy} {
		t.Run(string(c), func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeError(rec, c, "req-1")
			if rec.Code != c.Status() {
				t.Errorf("status = %d, want %d", rec.Code, c.Status())
			}
			if got := rec.Header().Get("X-Proxy-Error"); got != string(c) {
				t.Errorf("X-Proxy-Error = %q, want %q", got, c)
			}
			if got := rec.Header().Get("X-Request-Id"); got != "req-1" {
				t.Errorf("X-Request-Id = %q, want req-1", got)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if body["error"] != string(c) || body["request_id"] != "req-1" || body["message"] == "" {
				t.Errorf("body = %v", body)
			}
		})
	}
	want := map[Category]int{ErrNoRoute: 404, ErrMethodNotAllowed: 405, ErrBadRequest: 400, ErrRequestTooLarge: 413,
		ErrHeaderTooLarge: 431, ErrURITooLong: 414, ErrTLSRequired: 403, ErrConnectFailed: 502, ErrUpstreamReset: 502,
		ErrUpstreamTimeout: 504, ErrRequestTimeout: 504, ErrNoHealthy: 503, ErrClientClosed: 499}
	for c, s := range want {
		if c.Status() != s {
			t.Errorf("%s.Status() = %d, want %d", c, c.Status(), s)
		}
	}
	_ = http.StatusOK
}
