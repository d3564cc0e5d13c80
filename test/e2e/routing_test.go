package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// routingConfig lists the routes in an order that differs from their
// precedence, so config order alone cannot pass the test.
const routingConfig = `routes:
  - id: host-exact
    host: api.example.com
    pool: p-host-exact
  - id: host-wild
    host: "*.example.com"
    pool: p-host-wild
  - id: host-regex
    host: '[a-z]+\.regex\.test'
    pool: p-host-regex
  - id: regex
    path_regex: '^/items.*$'
    pool: p-regex
  - id: prefix
    path_prefix: /items
    pool: p-prefix
  - id: exact
    path: /items/special
    pool: p-exact
  - id: methods
    path: /m
    methods: [GET, POST]
    pool: p-methods
  - id: nohdr
    path_prefix: /h
    pool: p-nohdr
  - id: hdr
    path_prefix: /h
    headers: {X-Env: canary}
    pool: p-hdr
  - id: query
    path: /q
    query: {beta: "1"}
    pool: p-query
  - id: rewrite
    path_prefix: /old
    rewrite: {path_prefix: /new}
    pool: p-rewrite
`

func TestRouting(t *testing.T) {
	t.Parallel()
	names := []string{"host-exact", "host-wild", "host-regex", "regex", "prefix", "exact",
		"methods", "nohdr", "hdr", "query", "rewrite"}
	var pools strings.Builder
	pools.WriteString("pools:\n")
	for _, n := range names {
		up := newEcho(t, n)
		fmt.Fprintf(&pools, "  - id: p-%s\n    endpoints: [{address: %s}]\n", n, up.addr)
	}
	p := startProxy(t, routingConfig+pools.String()+fastShutdown)
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name     string
		method   string
		host     string
		target   string
		header   http.Header
		wantUp   string // upstream (= route) expected; "" for a proxy error
		wantURI  string // what the upstream must see; "" means target
		wantCode int
		wantErr  string
	}{
		{name: "exact host", host: "api.example.com", target: "/anything", wantUp: "host-exact"},
		{name: "exact host case and port", host: "API.Example.COM:8080", target: "/items", wantUp: "host-exact"},
		{name: "wildcard host beats host-less routes", host: "foo.example.com", target: "/items/special", wantUp: "host-wild"},
		{name: "regex host", host: "abc.regex.test", target: "/items/special", wantUp: "host-regex"},
		{name: "exact path beats prefix and regex", host: "other.test", target: "/items/special", wantUp: "exact"},
		{name: "prefix matches itself", host: "other.test", target: "/items", wantUp: "prefix"},
		{name: "prefix beats regex", host: "other.test", target: "/items/42", wantUp: "prefix"},
		{name: "prefix deeper than exact", host: "other.test", target: "/items/special/more", wantUp: "prefix"},
		{name: "prefix is segment aware", host: "other.test", target: "/itemsx", wantUp: "regex"},
		{name: "path forwarded as sent", host: "other.test", target: "/items/%7Euser?a=%20b", wantUp: "prefix"},
		{name: "matched after decoding unreserved", host: "other.test", target: "/%69tems/special", wantUp: "exact"},
		{name: "matched after resolving dot-dot", host: "other.test", target: "/m/../items/special", wantUp: "exact"},
		{name: "matched after resolving dot", host: "other.test", target: "/items/./special", wantUp: "exact"},
		{name: "matched after resolving double slash", host: "other.test", target: "/items//special", wantUp: "exact"},
		{name: "method GET allowed", host: "other.test", target: "/m", wantUp: "methods"},
		{name: "method POST allowed", method: http.MethodPost, host: "other.test", target: "/m", wantUp: "methods"},
		{name: "method DELETE not allowed", method: http.MethodDelete, host: "other.test", target: "/m",
			wantCode: http.StatusMethodNotAllowed, wantErr: "method_not_allowed"},
		{name: "header constraint wins over order", host: "other.test", target: "/h/1",
			header: http.Header{"X-Env": {"canary"}}, wantUp: "hdr"},
		{name: "header absent", host: "other.test", target: "/h/1", wantUp: "nohdr"},
		{name: "header other value", host: "other.test", target: "/h/1",
			header: http.Header{"X-Env": {"stable"}}, wantUp: "nohdr"},
		{name: "query constraint", host: "other.test", target: "/q?beta=1", wantUp: "query"},
		{name: "query wrong value", host: "other.test", target: "/q?beta=2",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
		{name: "query missing", host: "other.test", target: "/q",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
		{name: "rewrite prefix", host: "other.test", target: "/old/x?y=1", wantUp: "rewrite", wantURI: "/new/x?y=1"},
		{name: "rewrite prefix itself", host: "other.test", target: "/old", wantUp: "rewrite", wantURI: "/new"},
		{name: "rewrite is segment aware", host: "other.test", target: "/older",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
		{name: "no route", host: "other.test", target: "/nothing",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
		{name: "admin metrics not on data plane", target: "/metrics",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
		{name: "admin ready not on data plane", target: "/ready",
			wantCode: http.StatusNotFound, wantErr: "no_route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp, b := do(t, c, method, p.url(tc.target), tc.host, tc.header, nil)
			if tc.wantErr != "" {
				checkProxyError(t, resp, b, tc.wantCode, tc.wantErr)
				if got := resp.Header.Get("X-Upstream"); got != "" {
					t.Errorf("%s %s reached upstream %q, want a proxy error", method, tc.target, got)
				}
				if tc.wantCode == http.StatusMethodNotAllowed {
					allow := strings.Split(strings.ReplaceAll(resp.Header.Get("Allow"), " ", ""), ",")
					if !slices.Contains(allow, "GET") || !slices.Contains(allow, "POST") || slices.Contains(allow, "DELETE") {
						t.Errorf("Allow = %q, want GET and POST and not DELETE", resp.Header.Get("Allow"))
					}
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s (Host %s) = %d, want 200 from %s (body %q)", method, tc.target, tc.host, resp.StatusCode, tc.wantUp, b)
			}
			rep := decodeEcho(t, b)
			if rep.Upstream != tc.wantUp {
				t.Errorf("%s %s (Host %s) went to %q, want %q", method, tc.target, tc.host, rep.Upstream, tc.wantUp)
			}
			wantURI := tc.wantURI
			if wantURI == "" {
				wantURI = tc.target
			}
			if rep.URI != wantURI {
				t.Errorf("upstream request URI = %q, want %q", rep.URI, wantURI)
			}
			if tc.host != "" && rep.Host != tc.host {
				t.Errorf("upstream Host = %q, want %q", rep.Host, tc.host)
			}
		})
	}
}

// TestRoutingAbsoluteForm sends an absolute-form request target: the
// authority in it, not the Host header, is the host (RFC 9112 3.2.2).
func TestRoutingAbsoluteForm(t *testing.T) {
	t.Parallel()
	exact, other := newEcho(t, "exact-host"), newEcho(t, "other")
	p := startProxy(t, fmt.Sprintf(`routes:
  - {id: exact-host, host: api.example.com, pool: exact-host}
  - {id: other, pool: other}
pools:
  - {id: exact-host, endpoints: [{address: %s}]}
  - {id: other, endpoints: [{address: %s}]}
%s`, exact.addr, other.addr, fastShutdown))
	res := rawRoundTrip(t, p.data, "GET http://api.example.com/abs?x=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
	if res.resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %q)", res.resp.StatusCode, res.body)
	}
	rep := decodeEcho(t, res.body)
	if rep.Upstream != "exact-host" {
		t.Errorf("absolute-form request for api.example.com (Host: other.test) went to %q, want %q", rep.Upstream, "exact-host")
	}
	if rep.Host != "api.example.com" {
		t.Errorf("upstream Host = %q, want %q", rep.Host, "api.example.com")
	}
}
