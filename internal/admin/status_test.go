package admin

import (
	"encoding/base64"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/snapshot"
)

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func basic(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	var h snapshot.Holder
	h.Swap(&snapshot.Snapshot{Version: "0123456789abcdef", Label: "<b>release</b>"})
	srv := New(Options{Snapshots: &h})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Body)
	page := string(body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{`<code id="version">0123456789abcdef</code>`, "&lt;b&gt;release&lt;/b&gt;", `id="live"`, "<noscript>"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>release</b>") {
		t.Errorf("status page did not escape the label")
	}
	// The CSP allows exactly the inline script and style, by hash: the
	// text between the tags must be the hashed constants, byte for byte.
	csp := rec.Header().Get("Content-Security-Policy")
	for _, c := range []struct{ open, close, text string }{
		{"<script>", "</script>", statusScript},
		{"<style>", "</style>", statusStyle},
	} {
		i := strings.Index(page, c.open)
		j := strings.Index(page, c.close)
		if i < 0 || j < i || page[i+len(c.open):j] != c.text {
			t.Errorf("inline %s is not the hashed constant", c.open)
		}
		if !strings.Contains(csp, cspHash(c.text)) {
			t.Errorf("CSP %q lacks the hash of %s", csp, c.open)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("status page references external assets")
	}
	// The partial is the live part only.
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/?partial=1", nil))
	partial, _ := io.ReadAll(rec.Body)
	if strings.Contains(string(partial), "<html") || !strings.Contains(string(partial), "0123456789abcdef") {
		t.Errorf("partial = %q, want the live section only", partial)
	}
}
