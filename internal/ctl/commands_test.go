package ctl

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const cfgYAML = `version: "label"
server:
  max_header_count: 100
  h2c: false
routes:
  - id: api
    path_prefix: /api
    pool: backend
    headers: {X-API-Version: v2}
pools:
  - id: backend
    endpoints:
      - address: 10.0.1.10:8000
        weight: 100
    ratio: 0.5
`

// cfgJSON is cfgYAML as the server must receive it: integers stay
// integers, booleans booleans.
const cfgJSON = `{"version": "label", "server": {"max_header_count": 100, "h2c": false},
	"routes": [{"id": "api", "path_prefix": "/api", "pool": "backend", "headers": {"X-API-Version": "v2"}}],
	"pools": [{"id": "backend", "endpoints": [{"address": "10.0.1.10:8000", "weight": 100}], "ratio": 0.5}]}`

// wantRequest is a request the emulator must have received, in order.
type wantRequest struct {
	method, path string
	query        url.Values // nil: no query
	body         string     // JSON, compared semantically; "" = no body
}

// fixtures writes the config files the cases name as {dir}/...
func fixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"cfg.yaml":     cfgYAML,
		"cfg.yml":      cfgYAML,
		"cfg.json":     `{"routes": [], "big": 12345678901234567890, "f": 1.50}`,
		"badkeys.yaml": "routes:\n  - id: a\n    headers:\n      1: x\n",
		"broken.yaml":  "routes: [\n",
		"cfg.txt":      "routes: []\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCtlCommands(t *testing.T) {
	t.Parallel()
	dir := fixtures(t)
	cfgBody := `{"config": ` + cfgJSON + `}`
	tests := []struct {
		desc      string
		args      []string
		env       map[string]string // added to ADMIN_TOKEN and PROXY_ADMIN_URL
		stdin     string
		replies   map[string]reply
		wantCode  int
		wantOut   string   // exact stdout, when not ""
		outHas    []string // substrings of stdout
		errHas    []string // substrings of stderr
		wantReqs  []wantRequest
		noRequest bool // the command must fail before sending anything
	}{
		{
			desc:     "validate yaml valid",
			args:     []string{"validate", "{dir}/cfg.yaml"},
			wantOut:  "valid: version v2\n",
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: cfgBody}},
		},
		{
			desc:     "validate .yml and json output",
			args:     []string{"validate", "-o", "json", "{dir}/cfg.yml"},
			wantOut:  "{\n  \"valid\": true,\n  \"version\": \"v2\"\n}\n",
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: cfgBody}},
		},
		{
			desc: "validate invalid",
			args: []string{"validate", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathValidate: {status: 422, body: `{"valid": false, "errors": [
				{"path": "routes[0].pool", "message": "unknown pool \"x\""}, {"path": "pools[0].endpoints", "message": "empty"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "invalid: 2 errors\n  routes[0].pool: unknown pool \"x\"\n  pools[0].endpoints: empty\n",
			errHas:   []string{"proxy ctl: config is invalid: 2 errors"},
		},
		{
			desc:     "validate invalid json output keeps the body",
			args:     []string{"-o", "json", "validate", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathValidate: {status: 422, body: `{"valid":false,"errors":[{"path":"routes","message":"bad"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "{\n  \"valid\": false,\n  \"errors\": [\n    {\n      \"path\": \"routes\",\n      \"message\": \"bad\"\n    }\n  ]\n}\n",
			errHas:   []string{"config is invalid: 1 error"},
		},
		{
			desc:     "validate json file keeps numbers exact",
			args:     []string{"validate", "{dir}/cfg.json"},
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: `{"config": {"routes": [], "big": 12345678901234567890, "f": 1.50}}`}},
		},
		{
			desc:     "validate yaml from stdin",
			args:     []string{"validate", "-"},
			stdin:    cfgYAML,
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: cfgBody}},
		},
		{
			desc:     "validate json from stdin",
			args:     []string{"validate", "-format", "json", "-"},
			stdin:    `{"routes": [{"id": "a"}]}`,
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: `{"config": {"routes": [{"id": "a"}]}}`}},
		},
		{
			desc:      "yaml with non-string keys is rejected before sending",
			args:      []string{"validate", "{dir}/badkeys.yaml"},
			wantCode:  ExitFailed,
			errHas:    []string{"badkeys.yaml: routes[0].headers: mapping key 1 (int) is not a string"},
			noRequest: true,
		},
		{
			desc:      "broken yaml",
			args:      []string{"validate", "{dir}/broken.yaml"},
			wantCode:  ExitFailed,
			errHas:    []string{"broken.yaml: yaml:"},
			noRequest: true,
		},
		{
			desc:      "unreadable file is a failed action",
			args:      []string{"apply", "{dir}/missing.yaml"},
			wantCode:  ExitFailed,
			errHas:    []string{"missing.yaml", "no such file"},
			noRequest: true,
		},
		{
			desc:      "unknown extension is bad usage",
			args:      []string{"validate", "{dir}/cfg.txt"},
			wantCode:  ExitUsage,
			errHas:    []string{"use .yaml, .yml or .json, or -format"},
			noRequest: true,
		},
		{
			desc:     "-format overrides the extension",
			args:     []string{"validate", "-format", "yaml", "{dir}/cfg.txt"},
			wantReqs: []wantRequest{{method: "POST", path: pathValidate, body: `{"config": {"routes": []}}`}},
		},
		{
			desc:     "diff",
			args:     []string{"diff", "{dir}/cfg.yaml"},
			wantOut:  "~ routes[api].timeout: \"5s\" -> \"10s\"\n+ routes[new]: {\"id\":\"new\",\"path_prefix\":\"/new\",\"pool\":\"backend\"}\n- pools[old]\n3 changes (v1 → v2)\n",
			wantReqs: []wantRequest{{method: "POST", path: pathDiff, body: cfgBody}},
		},
		{
			desc:    "diff without changes",
			args:    []string{"diff", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathDiff: {status: 200, body: `{"from": "v1", "to": "v1", "changes": []}`}},
			wantOut: "no changes\n",
		},
		{
			desc: "diff truncates long values",
			args: []string{"diff", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathDiff: {status: 200, body: `{"from": "a", "to": "b", "changes": [
				{"op": "add", "path": "routes[x]", "after": "` + strings.Repeat("y", 300) + `"}]}`}},
			wantOut: "+ routes[x]: \"" + strings.Repeat("y", 118) + "…\n1 change (a → b)\n",
		},
		{
			desc:     "diff of an invalid config",
			args:     []string{"diff", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathDiff: {status: 422, body: `{"valid": false, "errors": [{"path": "routes", "message": "bad"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "invalid: 1 error\n  routes: bad\n",
			errHas:   []string{"diff rejected: 1 error"},
		},
		{
			desc: "diff of a config an apply would reject",
			args: []string{"diff", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathDiff: {status: 200, body: `{"from": "v1", "to": "v3", "valid": false,
				"errors": [{"path": "routes[0].pool", "message": "unknown pool"}],
				"changes": [{"op": "change", "path": "routes[api].pool", "before": "a", "after": "b"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "~ routes[api].pool: \"a\" -> \"b\"\n1 change (v1 → v3)\ninvalid: 1 error\n  routes[0].pool: unknown pool\n",
			errHas:   []string{"proxy ctl: config is invalid: 1 error; an apply would be rejected"},
		},
		{
			desc:    "diff of a valid config says nothing more",
			args:    []string{"diff", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathDiff: {status: 200, body: `{"from": "v1", "to": "v1", "valid": true, "changes": []}`}},
			wantOut: "no changes\n",
		},
		{
			desc:     "apply",
			args:     []string{"apply", "{dir}/cfg.yaml"},
			wantOut:  "applied version v2 (was v1) at 2026-01-02T03:04:05Z\n",
			wantReqs: []wantRequest{{method: "POST", path: pathApply, body: cfgBody}},
		},
		{
			desc:     "apply with expected version, flags after FILE",
			args:     []string{"apply", "{dir}/cfg.yaml", "-expected-version", "v1", "-o", "json"},
			outHas:   []string{"\"previous_version\": \"v1\"", "\"unchanged\": false"},
			wantReqs: []wantRequest{{method: "POST", path: pathApply, body: `{"config": ` + cfgJSON + `, "expected_version": "v1"}`}},
		},
		{
			desc:    "apply unchanged",
			args:    []string{"apply", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathApply: {status: 200, body: `{"version": "v1", "previous_version": "v1", "applied_at": "t", "unchanged": true}`}},
			wantOut: "unchanged: version v1 already active\n",
		},
		{
			desc: "apply rejected",
			args: []string{"apply", "{dir}/cfg.yaml"},
			replies: map[string]reply{"POST " + pathApply: {status: 422, body: `{"valid": false, "error": "config rejected", "errors": [
				{"path": "a", "message": "x"}, {"path": "b", "message": "y"}, {"path": "c", "message": "z"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "rejected: 3 errors\n  a: x\n  b: y\n  c: z\n",
			errHas:   []string{"proxy ctl: apply rejected: 3 errors"},
		},
		{
			desc:     "apply conflict",
			args:     []string{"apply", "-expected-version", "v0", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathApply: {status: 409, body: `{"error": "expected version v0 is not active", "active_version": "v1"}`}},
			wantCode: ExitFailed,
			wantOut:  "",
			errHas:   []string{"proxy ctl: apply rejected: expected version v0 is not active (active version v1)"},
		},
		{
			desc:     "apply conflict naming the active version once",
			args:     []string{"apply", "-expected-version", "v0", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathApply: {status: 409, body: `{"error": "expected_version \"v0\" is not the active version \"v1\"", "active_version": "v1"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: apply rejected: expected_version \"v0\" is not the active version \"v1\"\n"},
		},
		{
			desc:     "apply conflict json output",
			args:     []string{"apply", "-o", "json", "-expected-version", "v0", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathApply: {status: 409, body: `{"error":"mismatch","active_version":"v1"}`}},
			wantCode: ExitFailed,
			wantOut:  "{\n  \"error\": \"mismatch\",\n  \"active_version\": \"v1\"\n}\n",
		},
		{
			desc:     "rollback to previous",
			args:     []string{"rollback"},
			wantOut:  "rolled back to version v1 (was v2) at 2026-01-03T00:00:00Z\n",
			wantReqs: []wantRequest{{method: "POST", path: pathRollback, body: `{"version": ""}`}},
		},
		{
			desc:     "rollback without a previous version",
			args:     []string{"rollback"},
			replies:  map[string]reply{"POST " + pathRollback: {status: 422, body: `{"valid": false, "error": "config rejected: 1 errors", "errors": [{"path": "", "message": "no previous version"}]}`}},
			wantCode: ExitFailed,
			wantOut:  "rejected: 1 error\n  no previous version\n",
			errHas:   []string{"proxy ctl: rollback rejected: 1 error"},
		},
		{
			desc:    "applied_at with nanoseconds is shown in seconds",
			args:    []string{"rollback"},
			replies: map[string]reply{"POST " + pathRollback: {status: 200, body: `{"version": "v1", "previous_version": "", "applied_at": "2026-01-03T00:00:00.123456789Z"}`}},
			wantOut: "rolled back to version v1 (was none) at 2026-01-03T00:00:00Z\n",
		},
		{
			desc:     "rollback to a version",
			args:     []string{"rollback", "-to", "v1"},
			wantReqs: []wantRequest{{method: "POST", path: pathRollback, body: `{"version": "v1"}`}},
		},
		{
			desc:     "rollback to an unknown version",
			args:     []string{"rollback", "-to", "nope"},
			replies:  map[string]reply{"POST " + pathRollback: {status: 404, body: `{"error": "unknown version nope"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: rollback rejected: unknown version nope"},
		},
		{
			desc:     "versions",
			args:     []string{"versions"},
			wantOut:  "VERSION  APPLIED AT            SOURCE  ACTIVE\nv2       2026-01-02T03:04:05Z  admin   *\nv1       2026-01-01T00:00:00Z  file\n",
			wantReqs: []wantRequest{{method: "GET", path: pathVersions}},
		},
		{
			desc:    "versions json output",
			args:    []string{"versions", "-o", "json"},
			replies: map[string]reply{"GET " + pathVersions: {status: 200, body: `{"versions":[]}`}},
			wantOut: "{\n  \"versions\": []\n}\n",
		},
		{
			desc:    "explain matched",
			args:    []string{"explain", "-host", "api.example.com", "-path", "/api/x?q=1", "-method", "POST", "-H", "X-Api-Version: v2", "-H", "Cookie:a=b"},
			wantOut: "route api (pool backend, policy p1, status 200)\n\nROUTE  RESULT  REASON\napi    match   -\nadmin  skip    header X-Admin missing\n",
			wantReqs: []wantRequest{{method: "GET", path: pathMatch, query: url.Values{
				"host": {"api.example.com"}, "path": {"/api/x?q=1"}, "method": {"POST"}, "h": {"X-Api-Version:v2", "Cookie:a=b"},
			}}},
		},
		{
			desc:     "explain without match",
			args:     []string{"explain", "-host", "h", "-path", "/"},
			replies:  map[string]reply{"GET " + pathMatch: {status: 200, body: `{"matched": false, "status": 404, "candidates": []}`}},
			wantOut:  "no route: 404 no_route\n",
			wantReqs: []wantRequest{{method: "GET", path: pathMatch, query: url.Values{"host": {"h"}, "path": {"/"}, "method": {"GET"}}}},
		},
		{
			desc:    "explain method mismatch",
			args:    []string{"explain", "-host", "h", "-path", "/"},
			replies: map[string]reply{"GET " + pathMatch: {status: 200, body: `{"matched": false, "status": 405, "candidates": [{"route": "a", "result": "method_mismatch", "reason": "wants POST"}]}`}},
			outHas:  []string{"no route: 405 method_not_allowed\n", "a      method_mismatch  wants POST"},
		},
		{
			desc:    "explain method mismatch with the server's category and allow list",
			args:    []string{"explain", "-host", "h", "-path", "/"},
			replies: map[string]reply{"GET " + pathMatch: {status: 200, body: `{"matched": false, "status": 405, "error": "method_not_allowed", "allow": ["GET", "HEAD"], "candidates": []}`}},
			wantOut: "no route: 405 method_not_allowed (allow GET,HEAD)\n",
		},
		{
			desc: "status of a proxy without config",
			args: []string{"status"},
			replies: map[string]reply{
				"GET " + pathCurrent: {status: 200, body: `{"version": "", "applied_at": "2026-01-01T00:00:00.5Z", "source": "none", "config": null}`},
				"GET " + pathPools:   {status: 200, body: `{"pools": []}`},
				"GET " + pathReady:   {status: 200, body: `{"status": "ready", "version": ""}`},
			},
			wantOut: "version:    none\napplied at: 2026-01-01T00:00:00Z\nsource:     none\nready:      ready\nroutes:     0\npools:      0 (0 fully healthy)\n",
		},
		{
			desc:    "status shows the label",
			args:    []string{"status"},
			replies: map[string]reply{"GET " + pathCurrent: {status: 200, body: `{"version": "abc", "label": "release 7", "applied_at": "t", "source": "admin", "config": {"routes": []}}`}},
			outHas:  []string{"version:    abc (label \"release 7\")\n"},
		},
		{
			desc: "status",
			args: []string{"status"},
			wantOut: "version:    v1\napplied at: 2026-01-01T00:00:00Z\nsource:     file\nready:      ready\nroutes:     2\npools:      2 (1 fully healthy)\n\n" +
				"POOL     HEALTHY  BALANCER\nbackend  2/3      round_robin\nweb      1/1      p2c\n",
			wantReqs: []wantRequest{{method: "GET", path: pathReady}, {method: "GET", path: pathCurrent}, {method: "GET", path: pathPools}},
		},
		{
			desc:    "status while draining is still a status",
			args:    []string{"status"},
			replies: map[string]reply{"GET " + pathReady: {status: 503, body: `{"status": "draining"}`}},
			outHas:  []string{"ready:      draining\n"},
		},
		{
			desc:   "status json output",
			args:   []string{"-o", "json", "status"},
			outHas: []string{"\"ready\": {\n    \"status\": \"ready\"", "\"current\": {", "\"pools\": {\n    \"pools\": ["},
		},
		{
			desc:     "status stops at the first error",
			args:     []string{"status"},
			replies:  map[string]reply{"GET " + pathCurrent: {status: 500, body: `{"error": "boom"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: 500 internal server error: boom"},
			wantReqs: []wantRequest{{method: "GET", path: pathReady}, {method: "GET", path: pathCurrent}},
		},
		{
			desc:     "wrong token",
			args:     []string{"versions"},
			env:      map[string]string{"ADMIN_TOKEN": "wrong"},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: 401 unauthorized: check ADMIN_TOKEN"},
		},
		{
			desc:     "no token",
			args:     []string{"versions"},
			env:      map[string]string{"ADMIN_TOKEN": ""},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: 401 unauthorized: no token given: set ADMIN_TOKEN or -token"},
		},
		{
			desc:     "401 json output",
			args:     []string{"versions", "-o", "json"},
			env:      map[string]string{"ADMIN_TOKEN": "wrong"},
			wantCode: ExitFailed,
			wantOut:  "{\n  \"error\": \"missing or wrong bearer token\"\n}\n",
		},
		{
			desc:     "too many failed attempts",
			args:     []string{"versions"},
			replies:  map[string]reply{"GET " + pathVersions: {status: 429, body: `{"error": "too many"}`, header: map[string]string{"Retry-After": "6"}}},
			wantCode: ExitFailed,
			errHas:   []string{"429 too many requests: too many failed authentication attempts; retry after 6s"},
		},
		{
			desc:     "server error",
			args:     []string{"apply", "{dir}/cfg.yaml"},
			replies:  map[string]reply{"POST " + pathApply: {status: 500, body: `{"error": "disk full"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"proxy ctl: 500 internal server error: disk full"},
		},
		{
			desc: "non-JSON error from a gateway",
			args: []string{"versions", "-o", "json"},
			replies: map[string]reply{"GET " + pathVersions: {status: 502, body: "<html>\n<h1>Bad Gateway</h1></html>",
				header: map[string]string{"Content-Type": "text/html"}}},
			wantCode: ExitFailed,
			wantOut:  "",
			errHas:   []string{"502 bad gateway: <html>"},
		},
		{
			desc:     "unknown endpoint",
			args:     []string{"versions"},
			replies:  map[string]reply{"GET " + pathVersions: {status: 404, body: `{"error": "no such admin endpoint: /api/v2/config/versions"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"404 not found: no such admin endpoint"},
		},
		{
			desc:     "malformed success body",
			args:     []string{"versions"},
			replies:  map[string]reply{"GET " + pathVersions: {status: 200, body: `{"versions": "nope"}`}},
			wantCode: ExitFailed,
			errHas:   []string{"unexpected answer from the admin API (200)"},
		},
		{
			desc:     "token flag beats env",
			args:     []string{"versions", "-token", testToken},
			env:      map[string]string{"ADMIN_TOKEN": "wrong"},
			wantReqs: []wantRequest{{method: "GET", path: pathVersions}},
		},
		{
			desc:     "common flags before the command",
			args:     []string{"-token", testToken, "-o", "json", "versions"},
			env:      map[string]string{"ADMIN_TOKEN": "wrong"},
			outHas:   []string{"\"versions\": ["},
			wantReqs: []wantRequest{{method: "GET", path: pathVersions}},
		},
		{
			desc:     "command flag beats the same flag before the command",
			args:     []string{"-o", "json", "versions", "-o", "text"},
			outHas:   []string{"VERSION"},
			wantReqs: []wantRequest{{method: "GET", path: pathVersions}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := newEmulator(t, tc.replies)
			env := map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": e.srv.URL}
			for k, v := range tc.env {
				env[k] = v
			}
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "{dir}", dir)
			}
			got := runCtl(t, args, env, tc.stdin)
			if got.code != tc.wantCode {
				t.Errorf("Run(%q) = %d, want %d; stderr %q", tc.args, got.code, tc.wantCode, got.stderr)
			}
			if (tc.wantOut != "" || tc.wantCode != 0) && tc.outHas == nil && got.stdout != tc.wantOut {
				t.Errorf("Run(%q) stdout:\n%s\nwant:\n%s", tc.args, got.stdout, tc.wantOut)
			}
			for _, s := range tc.outHas {
				if !strings.Contains(got.stdout, s) {
					t.Errorf("Run(%q) stdout:\n%s\nwant it to contain %q", tc.args, got.stdout, s)
				}
			}
			for _, s := range tc.errHas {
				if !strings.Contains(got.stderr, s) {
					t.Errorf("Run(%q) stderr = %q, want it to contain %q", tc.args, got.stderr, s)
				}
			}
			if got.code == ExitOK && got.stderr != "" {
				t.Errorf("Run(%q) succeeded with stderr %q, want none", tc.args, got.stderr)
			}
			if got.code != ExitOK && strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("Run(%q) stderr = %q, want one line", tc.args, got.stderr)
			}
			if strings.Contains(got.stdout+got.stderr, testToken) {
				t.Errorf("Run(%q) printed the token", tc.args)
			}
			reqs := e.requests()
			if tc.noRequest && len(reqs) > 0 {
				t.Errorf("Run(%q) sent %d requests, want none", tc.args, len(reqs))
			}
			if tc.wantReqs != nil {
				checkRequests(t, reqs, tc.wantReqs, tc.args)
			}
		})
	}
}

// checkRequests compares what the emulator received with want, and that
// every API request carried the emulator's token.
func checkRequests(t *testing.T, got []recorded, want []wantRequest, args []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Run(%q) sent %d requests, want %d: %+v", args, len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.method || g.Path != w.path {
			t.Errorf("request %d = %s %s, want %s %s", i, g.Method, g.Path, w.method, w.path)
		}
		if len(g.Query) > 0 || w.query != nil {
			if !reflect.DeepEqual(g.Query, w.query) {
				t.Errorf("request %d query = %v, want %v", i, g.Query, w.query)
			}
		}
		if g.Path != pathReady && g.Auth != "Bearer "+testToken {
			t.Errorf("request %d Authorization = %q, want the bearer token", i, g.Auth)
		}
		if w.body == "" {
			if len(g.Body) != 0 {
				t.Errorf("request %d body = %s, want none", i, g.Body)
			}
			continue
		}
		if g.Type != "application/json" {
			t.Errorf("request %d Content-Type = %q, want application/json", i, g.Type)
		}
		if !jsonEqual(t, g.Body, []byte(w.body)) {
			t.Errorf("request %d body = %s, want %s", i, g.Body, w.body)
		}
	}
}

// jsonEqual compares two JSON documents by value, numbers by their text
// so that 100 and 100.0, or a rounded big integer, differ.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	for _, x := range []struct {
		b []byte
		v *any
	}{{a, &va}, {b, &vb}} {
		dec := json.NewDecoder(strings.NewReader(string(x.b)))
		dec.UseNumber()
		if err := dec.Decode(x.v); err != nil {
			t.Fatalf("bad JSON %s: %v", x.b, err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

func TestCtlUsage(t *testing.T) {
	t.Parallel()
	dir := fixtures(t)
	tests := []struct {
		desc     string
		args     []string
		wantCode int
		outHas   string // on stdout
		errHas   string // on stderr
	}{
		{"no command", nil, ExitUsage, "", "Usage: proxy ctl <command>"},
		{"help flag", []string{"-h"}, ExitOK, "Usage: proxy ctl <command>", ""},
		{"help command", []string{"help"}, ExitOK, "explain", ""},
		{"help of a command", []string{"help", "apply"}, ExitOK, "-expected-version", ""},
		{"command help", []string{"apply", "-h"}, ExitOK, "Usage: proxy ctl apply", ""},
		{"command help lists common flags", []string{"explain", "-help"}, ExitOK, "-admin-url", ""},
		{"unknown command", []string{"frobnicate"}, ExitUsage, "", `proxy ctl: unknown command "frobnicate"`},
		{"help of unknown command", []string{"help", "frobnicate"}, ExitUsage, "", "unknown command"},
		{"bad flag", []string{"status", "-nope"}, ExitUsage, "", "proxy ctl status: flag provided but not defined: -nope"},
		{"bad global flag", []string{"-nope", "status"}, ExitUsage, "", "flag provided but not defined: -nope"},
		{"missing FILE", []string{"apply"}, ExitUsage, "", "proxy ctl apply: missing FILE"},
		{"extra argument", []string{"status", "x"}, ExitUsage, "", `unexpected argument "x"`},
		{"two files", []string{"validate", "{dir}/cfg.yaml", "{dir}/cfg.json"}, ExitUsage, "", "unexpected argument"},
		{"bad -o", []string{"status", "-o", "yaml"}, ExitUsage, "", `bad -o "yaml"`},
		{"bad -timeout", []string{"status", "-timeout", "-1s"}, ExitUsage, "", "must be positive"},
		{"bad -format", []string{"validate", "-format", "toml", "-"}, ExitUsage, "", `bad -format "toml"`},
		{"cert without key", []string{"status", "-admin-url", "https://127.0.0.1:1", "-cert", "c.pem"}, ExitUsage, "", "-cert and -key go together"},
		{"tls files with http", []string{"status", "-cacert", "ca.pem"}, ExitUsage, "", "need an https:// admin URL"},
		{"bad admin URL", []string{"status", "-admin-url", "127.0.0.1:9000"}, ExitUsage, "", "want http://host:port or https://host:port"},
		{"explain without host", []string{"explain", "-path", "/"}, ExitUsage, "", "explain needs -host and -path"},
		{"explain bad header", []string{"explain", "-host", "h", "-path", "/", "-H", "nocolon"}, ExitUsage, "", "want 'Name: value'"},
		{"after --, flags are files", []string{"validate", "--", "-o"}, ExitUsage, "", "cannot tell the format"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "{dir}", dir)
			}
			// The token is in the environment: help must not show it.
			got := runCtl(t, args, map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": "http://127.0.0.1:1"}, "")
			if got.code != tc.wantCode {
				t.Errorf("Run(%q) = %d, want %d; stderr %q", tc.args, got.code, tc.wantCode, got.stderr)
			}
			if !strings.Contains(got.stdout, tc.outHas) {
				t.Errorf("Run(%q) stdout = %q, want it to contain %q", tc.args, got.stdout, tc.outHas)
			}
			if !strings.Contains(got.stderr, tc.errHas) {
				t.Errorf("Run(%q) stderr = %q, want it to contain %q", tc.args, got.stderr, tc.errHas)
			}
			if tc.outHas == "" && got.stdout != "" {
				t.Errorf("Run(%q) stdout = %q, want none", tc.args, got.stdout)
			}
			if strings.Contains(got.stdout+got.stderr, testToken) {
				t.Errorf("Run(%q) printed the token", tc.args)
			}
		})
	}
}

// TestConnectionFailures covers the answers that never come.
func TestCtlConnectionFailures(t *testing.T) {
	t.Parallel()
	// A port that was just free: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	blocking := newEmulator(t, map[string]reply{
		"GET " + pathVersions: {block: true},
		"POST " + pathApply:   {block: true},
	})
	dir := fixtures(t)

	tests := []struct {
		desc   string
		url    string
		args   []string
		errHas []string
	}{
		{"connection refused", closedURL, []string{"versions"}, []string{"proxy ctl: cannot reach admin API at " + closedURL + ": ", "connection refused"}},
		{"timeout", blocking.srv.URL, []string{"versions", "-timeout", "200ms"}, []string{"did not answer within 200ms (-timeout)"}},
		{"timeout of a change", blocking.srv.URL, []string{"apply", "-timeout", "200ms", dir + "/cfg.yaml"}, []string{"did not answer within 200ms", "the change may still have been made"}},
		{"https to a plain server", strings.Replace(blocking.srv.URL, "http:", "https:", 1), []string{"versions"}, []string{"TLS with admin API at https://"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got := runCtl(t, tc.args, map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": tc.url}, "")
			if got.code != ExitFailed {
				t.Errorf("Run(%q) = %d, want %d; stderr %q", tc.args, got.code, ExitFailed, got.stderr)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(got.stderr, s) {
					t.Errorf("Run(%q) stderr = %q, want it to contain %q", tc.args, got.stderr, s)
				}
			}
			if strings.Count(got.stderr, "\n") != 1 || strings.Contains(got.stderr, testToken) {
				t.Errorf("Run(%q) stderr = %q, want one line without the token", tc.args, got.stderr)
			}
		})
	}
}

// TestRedirects checks that the token and the config never follow a
// redirect to another host, and that a same-host one is followed.
func TestCtlRedirects(t *testing.T) {
	t.Parallel()
	other := newEmulator(t, nil)
	tests := []struct {
		desc       string
		location   func(self string) string
		wantCode   int
		wantOther  int // requests the other host may see
		wantErrHas string
	}{
		{"other host", func(string) string { return other.srv.URL + pathVersions }, ExitFailed, 0, "refusing redirect to another host"},
		{"same host", func(self string) string { return self + "/moved" }, ExitOK, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			// Not parallel: the subtests share other's request count.
			var self string
			e := newEmulator(t, map[string]reply{
				"GET /moved": {status: 200, body: `{"versions": []}`},
			})
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					e.ServeHTTP(w, r)
					return
				}
				http.Redirect(w, r, tc.location(self), http.StatusTemporaryRedirect)
			}))
			t.Cleanup(redirector.Close)
			self = redirector.URL
			before := len(other.requests())
			got := runCtl(t, []string{"versions"}, map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": redirector.URL}, "")
			if got.code != tc.wantCode {
				t.Errorf("Run(versions) = %d, want %d; stderr %q", got.code, tc.wantCode, got.stderr)
			}
			if n := len(other.requests()) - before; n != tc.wantOther {
				t.Errorf("other host saw %d requests, want %d", n, tc.wantOther)
			}
			if !strings.Contains(got.stderr, tc.wantErrHas) {
				t.Errorf("stderr = %q, want it to contain %q", got.stderr, tc.wantErrHas)
			}
		})
	}
}

// TestAdminURLPrefix checks that a path in -admin-url is kept, for an
// admin API mounted under a prefix.
func TestCtlAdminURLPrefix(t *testing.T) {
	t.Parallel()
	e := newEmulator(t, nil)
	prefix := httptest.NewServer(http.StripPrefix("/keel", e))
	t.Cleanup(prefix.Close)
	got := runCtl(t, []string{"versions", "-admin-url", prefix.URL + "/keel/"}, map[string]string{"ADMIN_TOKEN": testToken}, "")
	if got.code != ExitOK {
		t.Fatalf("Run(versions) = %d, want 0; stderr %q", got.code, got.stderr)
	}
	if reqs := e.requests(); len(reqs) != 1 || reqs[0].Path != pathVersions {
		t.Errorf("requests = %+v, want one GET %s", reqs, pathVersions)
	}
}

// TestControlCharacters checks that text output cannot carry terminal
// escapes from the server's strings.
func TestCtlControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEmulator(t, map[string]reply{"POST " + pathValidate: {status: 422,
		body: `{"valid": false, "errors": [{"path": "routes", "message": "bad \u001b[2Jvalue"}]}`}})
	dir := fixtures(t)
	got := runCtl(t, []string{"validate", dir + "/cfg.yaml"}, map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": e.srv.URL}, "")
	if strings.ContainsRune(got.stdout, 0x1b) {
		t.Errorf("stdout = %q, want no escape character", got.stdout)
	}
	if want := "  routes: bad ?[2Jvalue\n"; !strings.Contains(got.stdout, want) {
		t.Errorf("stdout = %q, want it to contain %q", got.stdout, want)
	}

	// The one-line reason on stderr quotes the server too.
	e = newEmulator(t, map[string]reply{"GET " + pathVersions: {status: 500, body: `{"error": "line one\nline two \u001b[31m"}`}})
	got = runCtl(t, []string{"versions"}, map[string]string{"ADMIN_TOKEN": testToken, "PROXY_ADMIN_URL": e.srv.URL}, "")
	if want := "proxy ctl: 500 internal server error: line one line two ?[31m\n"; got.stderr != want {
		t.Errorf("stderr = %q, want %q", got.stderr, want)
	}
}
