package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cret-admin-token"

// adminCall sends one admin API request with token (none when "") and a
// JSON body (none when nil), and decodes the JSON answer.
func adminCall(t testing.TB, p *proxyServer, method, path, token string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	resp, b := do(t, p.client, method, "http://"+p.admin+path, "", hdr, rd)
	var out map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
		}
	}
	return resp, out
}

// configDoc builds a config document for the JSON admin API.
func configDoc(t testing.TB, routes []map[string]any, pools []map[string]any) map[string]any {
	t.Helper()
	return map[string]any{"routes": routes, "pools": pools,
		"shutdown": map[string]any{"drain_delay": "0s", "grace_period": "2s"}}
}

func route(id, prefix, pool string) map[string]any {
	return map[string]any{"id": id, "path_prefix": prefix, "pool": pool}
}

func pool(id, addr string) map[string]any {
	return map[string]any{"id": id, "endpoints": []any{map[string]any{"address": addr}}}
}

// upstreamOf returns which test upstream served GET path.
func upstreamOf(t testing.TB, p *proxyServer, path string) string {
	t.Helper()
	resp, _ := do(t, newClient(t, 10*time.Second), "GET", p.url(path), "", nil, nil)
	return resp.Header.Get("X-Upstream")
}

func TestAdminConfigLifecycle(t *testing.T) {
	t.Parallel()
	a, b := newEcho(t, "a"), newEcho(t, "b")
	cfgA := configDoc(t, []map[string]any{route("web", "/", "p")}, []map[string]any{pool("p", a.addr)})
	cfgB := configDoc(t, []map[string]any{route("web", "/", "p"), route("api", "/api", "q")},
		[]map[string]any{pool("p", b.addr), pool("q", a.addr)})
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, "")

	// Validate.
	resp, out := adminCall(t, p, "POST", "/api/v2/config/validate", testToken, map[string]any{"config": cfgA})
	if resp.StatusCode != 200 || out["valid"] != true || out["version"] == "" {
		t.Fatalf("validate A = %d %v, want 200 valid with a version", resp.StatusCode, out)
	}
	versionA := out["version"].(string)
	bad := configDoc(t, []map[string]any{route("web", "/", "missing")}, nil)
	resp, out = adminCall(t, p, "POST", "/api/v2/config/validate", testToken, map[string]any{"config": bad})
	if resp.StatusCode != 422 || out["valid"] != false {
		t.Fatalf("validate bad = %d %v, want 422 valid:false", resp.StatusCode, out)
	}
	if errs, _ := out["errors"].([]any); len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), "routes[0].pool") {
		t.Fatalf("validate bad errors = %v, want one naming routes[0].pool", out["errors"])
	}

	// Apply A (from the empty config), then B conditionally.
	resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfgA})
	if resp.StatusCode != 200 || out["version"] != versionA || out["previous_version"] != "" {
		t.Fatalf("apply A = %d %v", resp.StatusCode, out)
	}
	if got := upstreamOf(t, p, "/x"); got != "a" {
		t.Fatalf("after apply A, /x served by %q, want a", got)
	}
	resp, out = adminCall(t, p, "POST", "/api/v2/config/diff", testToken, map[string]any{"config": cfgB})
	if resp.StatusCode != 200 || out["from"] != versionA || out["valid"] != true {
		t.Fatalf("diff = %d %v", resp.StatusCode, out)
	}
	diffText := fmt.Sprint(out["changes"])
	for _, want := range []string{"routes[api]", "pools[q]", "pools[p].endpoints"} {
		if !strings.Contains(diffText, want) {
			t.Errorf("diff changes %s do not mention %s", diffText, want)
		}
	}
	resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken,
		map[string]any{"config": cfgB, "expected_version": "0000000000000000"})
	if resp.StatusCode != 409 || out["active_version"] != versionA {
		t.Fatalf("apply with stale expected_version = %d %v, want 409 naming %s", resp.StatusCode, out, versionA)
	}
	if got := upstreamOf(t, p, "/x"); got != "a" {
		t.Fatalf("after a 409, /x served by %q, want a (unchanged)", got)
	}
	resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken,
		map[string]any{"config": cfgB, "expected_version": versionA})
	if resp.StatusCode != 200 || out["previous_version"] != versionA {
		t.Fatalf("apply B = %d %v", resp.StatusCode, out)
	}
	versionB := out["version"].(string)
	if got := upstreamOf(t, p, "/x"); got != "b" {
		t.Fatalf("after apply B, /x served by %q, want b", got)
	}
	// The same config again is a no-op.
	resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfgB})
	if resp.StatusCode != 200 || out["unchanged"] != true || out["version"] != versionB {
		t.Fatalf("re-apply B = %d %v, want unchanged", resp.StatusCode, out)
	}
	// A rejected apply leaves traffic untouched.
	resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": bad})
	if resp.StatusCode != 422 || out["valid"] != false {
		t.Fatalf("apply bad = %d %v, want 422", resp.StatusCode, out)
	}
	if got := upstreamOf(t, p, "/x"); got != "b" {
		t.Fatalf("after a rejected apply, /x served by %q, want b", got)
	}

	// Current and versions.
	resp, out = adminCall(t, p, "GET", "/api/v2/config/current", testToken, nil)
	if resp.StatusCode != 200 || out["version"] != versionB || out["source"] != "admin" {
		t.Fatalf("current = %d %v", resp.StatusCode, out)
	}
	if routes := out["config"].(map[string]any)["routes"].([]any); len(routes) != 2 {
		t.Fatalf("current config has %d routes, want 2", len(routes))
	}
	resp, out = adminCall(t, p, "GET", "/api/v2/config/versions", testToken, nil)
	vs, _ := out["versions"].([]any)
	if resp.StatusCode != 200 || len(vs) != 2 {
		t.Fatalf("versions = %d %v, want 2 entries", resp.StatusCode, out)
	}
	if v0 := vs[0].(map[string]any); v0["version"] != versionB || v0["active"] != true {
		t.Fatalf("versions[0] = %v, want %s active", v0, versionB)
	}

	// Rollback to the previous version, to an unknown one, then forward
	// again by version.
	resp, out = adminCall(t, p, "POST", "/api/v2/config/rollback", testToken, map[string]any{})
	if resp.StatusCode != 200 || out["version"] != versionA || out["previous_version"] != versionB {
		t.Fatalf("rollback = %d %v, want back to %s", resp.StatusCode, out, versionA)
	}
	if got := upstreamOf(t, p, "/x"); got != "a" {
		t.Fatalf("after rollback, /x served by %q, want a", got)
	}
	resp, _ = adminCall(t, p, "POST", "/api/v2/config/rollback", testToken, map[string]any{"version": "ffffffffffffffff"})
	if resp.StatusCode != 404 {
		t.Fatalf("rollback to an unknown version = %d, want 404", resp.StatusCode)
	}
	resp, out = adminCall(t, p, "POST", "/api/v2/config/rollback", testToken, map[string]any{"version": versionB})
	if resp.StatusCode != 200 || out["version"] != versionB {
		t.Fatalf("rollback to B = %d %v", resp.StatusCode, out)
	}

	// Runtime views.
	resp, out = adminCall(t, p, "GET", "/api/v2/pools", testToken, nil)
	if resp.StatusCode != 200 || len(out["pools"].([]any)) != 2 {
		t.Fatalf("pools = %d %v", resp.StatusCode, out)
	}
	resp, out = adminCall(t, p, "GET", "/api/v2/pools/p/health", testToken, nil)
	eps, _ := out["endpoints"].([]any)
	if resp.StatusCode != 200 || out["pool"] != "p" || len(eps) != 1 || eps[0].(map[string]any)["address"] != b.addr {
		t.Fatalf("pool p health = %d %v", resp.StatusCode, out)
	}
	if resp, _ = adminCall(t, p, "GET", "/api/v2/pools/nope/health", testToken, nil); resp.StatusCode != 404 {
		t.Fatalf("unknown pool health = %d, want 404", resp.StatusCode)
	}
	for _, path := range []string{"/api/v2/breakers", "/api/v2/traffic/canary"} {
		if resp, out = adminCall(t, p, "GET", path, testToken, nil); resp.StatusCode != 200 || len(out) != 1 {
			t.Fatalf("GET %s = %d %v", path, resp.StatusCode, out)
		}
	}

	// Explain.
	resp, out = adminCall(t, p, "GET", "/api/v2/routes/match?"+url.Values{"path": {"/api/x"}, "method": {"GET"}}.Encode(), testToken, nil)
	if resp.StatusCode != 200 || out["matched"] != true || out["route"] != "api" || out["pool"] != "q" {
		t.Fatalf("explain /api/x = %d %v, want route api pool q", resp.StatusCode, out)
	}
	cands := fmt.Sprint(out["candidates"])
	if !strings.Contains(cands, "web") || !strings.Contains(cands, "lost") {
		t.Fatalf("explain candidates %s: want web listed as lost", cands)
	}

	// Audit: newest first, every action recorded.
	resp, out = adminCall(t, p, "GET", "/api/v2/audit", testToken, nil)
	recs, _ := out["records"].([]any)
	var actions []string
	for _, r := range recs {
		m := r.(map[string]any)
		actions = append(actions, fmt.Sprintf("%s/%s", m["action"], m["result"]))
	}
	want := []string{"rollback/accepted", "rollback/rejected", "rollback/accepted", "apply/rejected",
		"apply/unchanged", "apply/accepted", "apply/rejected", "apply/accepted"}
	if resp.StatusCode != 200 || strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	if first := recs[0].(map[string]any); !strings.HasPrefix(fmt.Sprint(first["actor"]), "admin ") || first["hash"] == "" {
		t.Fatalf("audit record %v: want an admin actor and a hash", first)
	}
}

func TestAdminHTTPErrors(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "")
	tests := []struct {
		method, path string
		body         string
		want         int
	}{
		{"GET", "/api/v2/nope", "", 404},
		{"GET", "/api/v2/config/apply", "", 405},
		{"DELETE", "/api/v2/config/current", "", 405},
		{"POST", "/api/v2/config/apply", "{not json", 400},
		{"POST", "/api/v2/config/apply", `{"config": {}, "bundle": "x"}`, 400},
		{"POST", "/api/v2/config/validate", `{}`, 400},
		{"POST", "/api/v2/config/validate", `{"config": {"routes": "nope"}}`, 422},
		{"POST", "/api/v2/config/apply", `{"config": {"unknown_key": 1}}`, 422},
		{"POST", "/api/v2/config/validate", `{"config": {}}` + strings.Repeat(" ", 33<<20), 413},
	}
	for _, tt := range tests {
		resp, b := do(t, p.client, tt.method, "http://"+p.admin+tt.path, "", nil, strings.NewReader(tt.body))
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.want)
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: body %q, want a JSON {\"error\"}", tt.method, tt.path, b)
		}
		if tt.want == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
	// Admin paths never answer on the data plane.
	resp, _ := do(t, newClient(t, 10*time.Second), "GET", p.url("/api/v2/config/current"), "", nil, nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Proxy-Error") != "no_route" {
		t.Fatalf("data plane GET /api/v2/config/current = %d %q, want 404 no_route", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, "")
	// Open endpoints.
	for _, path := range []string{"/healthz", "/ready", "/metrics"} {
		if resp, _ := do(t, p.client, "GET", "http://"+p.admin+path, "", nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s without token = %d, want 200", path, resp.StatusCode)
		}
	}
	resp, out := adminCall(t, p, "GET", "/api/v2/config/current", "", nil)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || out["error"] == nil {
		t.Fatalf("no token = %d %v %q, want 401 with a Bearer challenge", resp.StatusCode, out, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ = adminCall(t, p, "GET", "/api/v2/config/current", testToken, nil); resp.StatusCode != 200 {
		t.Fatalf("right token = %d, want 200", resp.StatusCode)
	}
	// Unknown paths need the token too: no mapping the API unauthenticated.
	if resp, _ = adminCall(t, p, "GET", "/api/v2/secret-path", "", nil); resp.StatusCode != 401 {
		t.Fatalf("unknown path without token = %d, want 401", resp.StatusCode)
	}
	// The status page takes the token as the Basic password (browsers).
	req, _ := http.NewRequest("GET", "http://"+p.admin+"/", nil)
	req.SetBasicAuth("ops", testToken)
	r2, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 || !strings.HasPrefix(r2.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page with Basic auth = %d %q", r2.StatusCode, r2.Header.Get("Content-Type"))
	}
	if resp, _ = adminCall(t, p, "GET", "/", "", nil); resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("status page without token = %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Failed attempts are limited per client: after the burst, even the
	// right token waits. (3 failures above.)
	for i := 0; i < 7; i++ {
		if resp, _ = adminCall(t, p, "GET", "/api/v2/pools", "wrong-token", nil); resp.StatusCode != 401 {
			t.Fatalf("wrong token attempt %d = %d, want 401", i, resp.StatusCode)
		}
	}
	resp, out = adminCall(t, p, "GET", "/api/v2/pools", testToken, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures, right token = %d %v (Retry-After %q), want 429 with Retry-After",
			resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(p.stderr.String(), "wrong-token") || strings.Contains(p.stderr.String(), testToken) {
		t.Fatalf("a token reached the log:\n%s", tail(p.stderr.String(), 20))
	}
}

func TestMetricsRequireToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "m.yaml")
	writeFileAtomic(t, cfg, "metrics: {require_token: true, token_env: SCRAPE_TOKEN}\n"+fastShutdown)
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken, "SCRAPE_TOKEN=scrape-secret"}, cfg)
	get := func(auth string) int {
		hdr := http.Header{}
		if auth != "" {
			hdr.Set("Authorization", auth)
		}
		resp, _ := do(t, p.client, "GET", "http://"+p.admin+"/metrics", "", hdr, nil)
		return resp.StatusCode
	}
	if got := get(""); got != 401 {
		t.Errorf("metrics without a token = %d, want 401", got)
	}
	if got := get("Bearer " + testToken); got != 401 {
		t.Errorf("metrics with the admin token = %d, want 401 (scrapers get their own token)", got)
	}
	if got := get("Bearer scrape-secret"); got != 200 {
		t.Errorf("metrics with the metrics token = %d, want 200", got)
	}
	// Without the variable the config is refused at start-up.
	q := startProcEnv(t, nil, "-http-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-config-file", cfg)
	code, ok := q.wait(15 * time.Second)
	if !ok || code == 0 || !strings.Contains(q.stderr.String(), "SCRAPE_TOKEN") {
		q.kill()
		t.Fatalf("start without SCRAPE_TOKEN: exit %d (exited %v), stderr %q; want a refusal naming the variable", code, ok, tail(q.stderr.String(), 3))
	}
}
