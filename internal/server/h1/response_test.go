package h1

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// responseCases are handlers whose responses must be framed exactly as
// net/http's server frames them.
var responseCases = []struct {
	name    string
	req     string
	handler http.HandlerFunc
}{
	{"small body gets Content-Length", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}},
	{"empty body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {}},
	{"explicit status then body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "made")
	}},
	{"big body is chunked", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
	}},
	{"declared Content-Length", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20000")
		_, _ = io.WriteString(w, strings.Repeat("y", 20000))
	}},
	{"flush forces chunked", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "b")
	}},
	{"HTTP/1.0 big body is close-delimited", "GET / HTTP/1.0\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("z", 50<<10))
	}},
	{"HTTP/1.0 keep-alive small body", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "small")
	}},
	{"HEAD with body written", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ignored body")
	}},
	{"HEAD with declared length", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
	}},
	{"204", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
			panic(fmt.Sprintf("Write on 204 = %v", err))
		}
	}},
	{"304", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	}},
	{"declared trailers", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "data")
		w.Header().Set("X-Checksum", "abc")
	}},
	{"TrailerPrefix trailers", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}},
	{"handler asks to close", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	}},
	{"client asks to close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "bye")
	}},
	{"header changes after WriteHeader ignored", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-After", "1")
		_, _ = io.WriteString(w, "x")
	}},
	{"second WriteHeader ignored", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusInternalServerError)
	}},
	{"CRLF in value neutralised", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=1")
	}},
	{"transfer-encoding identity", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "identity")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "streamed")
	}},
	{"unknown status code", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(599)
	}},
	{"Content-Type kept", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}},
}

// describe renders what a client learns from a response.
func describe(res *http.Response, body string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "status=%q proto=%s cl=%d te=%q close=%v\n", res.Status, res.Proto, res.ContentLength,
		res.TransferEncoding, res.Close)
	for _, k := range []string{"X-Before", "X-After", "X-Evil", "Set-Cookie", "Etag", "Trailer", "Content-Type"} {
		if v, ok := res.Header[k]; ok {
			fmt.Fprintf(&sb, "h %s=%q\n", k, v)
		}
	}
	fmt.Fprintf(&sb, "body=%d:%.20q trailer=%v\n", len(body), body, res.Trailer)
	return sb.String()
}

// TestResponseFramingMatchesNetHTTP runs each handler under both servers.
func TestResponseFramingMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	for _, tt := range responseCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Content-Type sniffing is a documented net/http-only feature.
			noSniff := func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				tt.handler(w, r)
			}
			ours := serve(t, noSniff)
			theirs := startNetHTTP(t, http.HandlerFunc(noSniff))
			method := methodOf(tt.req)
			a := dial(t, ours.addr)
			a.send(tt.req)
			gotRes, gotBody := a.response(method)
			b := dial(t, theirs)
			b.send(tt.req)
			wantRes, wantBody := b.response(method)
			if got, want := describe(gotRes, gotBody), describe(wantRes, wantBody); got != want {
				t.Errorf("h1:\n%snet/http:\n%s", got, want)
			}
			if gotRes.Header.Get("Date") == "" {
				t.Errorf("no Date header")
			}
		})
	}
}
