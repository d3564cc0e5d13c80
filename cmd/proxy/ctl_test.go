package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestCtlDispatch checks that "proxy ctl" reaches the CLI with the
// process environment: PROXY_ADMIN_URL and ADMIN_TOKEN.
func TestCtlDispatch(t *testing.T) {
	var (
		mu       sync.Mutex
		lastAuth string
	)
	auth := func() string {
		mu.Lock()
		defer mu.Unlock()
		a := lastAuth
		lastAuth = ""
		return a
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastAuth = r.Header.Get("Authorization")
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v2/config/versions" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error": "no such admin endpoint"}`)
			return
		}
		io.WriteString(w, `{"versions": [{"version": "abc123", "applied_at": "2026-01-02T03:04:05Z", "source": "file", "active": true}]}`)
	}))
	defer srv.Close()
	t.Setenv("PROXY_ADMIN_URL", srv.URL)
	t.Setenv("ADMIN_TOKEN", "env-token")

	tests := []struct {
		desc     string
		args     []string
		wantCode int
		outHas   string
		errHas   string
		wantAuth string
	}{
		{"versions with env", []string{"ctl", "versions"}, 0, "abc123", "", "Bearer env-token"},
		{"flag beats env", []string{"ctl", "versions", "-token", "flag-token"}, 0, "abc123", "", "Bearer flag-token"},
		{"help", []string{"ctl", "-h"}, 0, "Usage: proxy ctl <command>", "", ""},
		{"unknown command", []string{"ctl", "nope"}, 2, "", `unknown command "nope"`, ""},
		{"failure", []string{"ctl", "status"}, 1, "", "proxy ctl: 404 not found", "Bearer env-token"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			auth()
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr %q", tc.args, code, tc.wantCode, errb.String())
			}
			if !strings.Contains(out.String(), tc.outHas) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tc.args, out.String(), tc.outHas)
			}
			if !strings.Contains(errb.String(), tc.errHas) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, errb.String(), tc.errHas)
			}
			if gotAuth := auth(); gotAuth != tc.wantAuth {
				t.Errorf("run(%q) sent Authorization %q, want %q", tc.args, gotAuth, tc.wantAuth)
			}
		})
	}
}
