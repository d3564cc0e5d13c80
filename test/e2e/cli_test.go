package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const validConfig = `routes:
  - {id: api, path_prefix: /api, methods: [GET], pool: api-pool, policy: p1}
policies:
  - {id: p1, timeout: 2s, body_size_limit: 1MB}
pools:
  - id: api-pool
    balancer: round_robin
    endpoints: [{address: 127.0.0.1:9, weight: 2}]
    transport: {dial_timeout: 1s, response_header_timeout: 2s}
logging: {access_log: true, redact_query: true}
metrics: {enabled: true, path: /metrics}
shutdown: {drain_delay: 1s, grace_period: 5s}
`

// poolBlock is a valid pools section for configs that test other parts.
const poolBlock = "pools:\n  - {id: p, endpoints: [{address: 127.0.0.1:9}]}\n"

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{name: "valid", cfg: validConfig, wantCode: 0, wantStdout: "valid (version "},
		{name: "several errors", cfg: `routes:
  - {id: a, path: /a, pool: missing}
  - {id: b, path_regex: "([", pool: p}
  - {id: c, path: /c, path_prefix: /c, pool: p}
  - {id: a, path: /d, pool: p}
pools:
  - {id: p, endpoints: [{address: 127.0.0.1:9}]}
  - {id: empty, endpoints: []}
`, wantCode: 1, wantStderr: []string{"routes[0].pool", "routes[1].path_regex", "routes[2]", "routes[3]", "pools[1].endpoints"}},
		{name: "unknown key", cfg: "routes:\n  - {id: a, path: /a, pool: p, colour: blue}\n" + poolBlock,
			wantCode: 1, wantStderr: []string{"routes[0].colour"}},
		{name: "bad duration", cfg: "routes:\n  - {id: a, path: /a, pool: p, policy: t}\npolicies:\n  - {id: t, timeout: soon}\n" + poolBlock,
			wantCode: 1, wantStderr: []string{"policies[0].timeout"}},
		{name: "cache not supported", cfg: "routes:\n  - {id: a, path: /a, pool: p}\n" + poolBlock +
			"cache:\n  - {route: a}\n",
			wantCode: 1, wantStderr: []string{"not supported yet: cache"}},
		{name: "tls without certificates is valid", cfg: "routes:\n  - {id: a, path: /a, pool: p}\n" + poolBlock +
			"tls: {min_version: \"1.2\"}\n",
			wantCode: 0},
		{name: "unreadable certificate", cfg: "routes:\n  - {id: a, path: /a, pool: p}\n" + poolBlock +
			"tls: {certificates: [{cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}]}\n",
			wantCode: 1, wantStderr: []string{"tls.certificates[0]"}},
		{name: "plugins not supported", cfg: "routes:\n  - {id: a, path: /a, pool: p}\n" + poolBlock +
			"plugins:\n  - {id: x, type: builtin, name: structured_logger}\n",
			wantCode: 1, wantStderr: []string{"not supported yet: plugins"}},
		{name: "pool tls with a missing CA file", cfg: "routes:\n  - {id: a, path: /a, pool: p}\n" +
			"pools:\n  - id: p\n    endpoints: [{address: 127.0.0.1:9}]\n    tls: {server_name: x, ca_file: /nonexistent/ca.pem}\n",
			wantCode: 1, wantStderr: []string{"pools[0].tls.ca_file", "/nonexistent/ca.pem: no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFileAtomic(t, path, tc.cfg)
			stdout, stderr, code := runCmd(t, 30*time.Second, "-validate", "-config-file", path)
			if code != tc.wantCode {
				t.Errorf("proxy -validate exit = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout, stderr)
			}
			if tc.wantStdout != "" && !strings.Contains(stdout, path+": "+tc.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, path+": "+tc.wantStdout)
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not name %q:\n%s", want, stderr)
				}
			}
			if tc.wantCode != 0 {
				for _, want := range tc.wantStderr[:1] {
					if !hasErrorLine(stderr, want) {
						t.Errorf("no stderr line of the form \"%s...: message\":\n%s", want, stderr)
					}
				}
			}
		})
	}
}

// hasErrorLine reports whether some line of out starts with path and has a
// ": message" after it ("not supported yet" lines name the path in the
// message and are accepted anywhere on the line).
func hasErrorLine(out, path string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(path, "not supported yet: ") && strings.Contains(line, path) {
			return true
		}
		if strings.HasPrefix(line, path) && strings.Contains(line[len(path):], ": ") {
			return true
		}
	}
	return false
}

func TestStartupFailures(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFileAtomic(t, bad, "routes:\n  - {id: a, path: /a, pool: missing}\n")
	tests := []struct {
		name       string
		args       []string
		wantCode   int // -1: any non-zero
		wantStderr string
	}{
		{"invalid config", []string{"-config-file", bad}, -1, "routes[0].pool"},
		{"missing config file", []string{"-config-file", filepath.Join(t.TempDir(), "nope.yaml")}, -1, "nope.yaml"},
		{"unknown flag", []string{"-no-such-flag"}, 2, "no-such-flag"},
		{"unbuilt feature flag", []string{"-enable-pull"}, -1, "not supported yet"},
		{"TLS listener without a certificate", []string{"-tls-addr", "127.0.0.1:0"}, -1, "needs a certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-http-addr", freeAddr(t), "-admin-addr", freeAddr(t)}, tc.args...)
			_, stderr, code := runCmd(t, 10*time.Second, args...)
			if (tc.wantCode == -1 && code == 0) || (tc.wantCode != -1 && code != tc.wantCode) {
				t.Errorf("proxy %v exit = %d, want %s", tc.args, code, codeWant(tc.wantCode))
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not mention %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

func codeWant(c int) string {
	if c == -1 {
		return "non-zero"
	}
	return fmt.Sprint(c)
}

func TestStartWithoutConfig(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "")
	c := newClient(t, 10*time.Second)
	for _, path := range []string{"/", "/anything?x=1", "/metrics"} {
		resp, b := do(t, c, http.MethodGet, p.url(path), "", nil, nil)
		checkProxyError(t, resp, b, http.StatusNotFound, "no_route")
	}
	if code, _ := p.readyVersion(t); code != http.StatusOK {
		t.Errorf("/ready = %d with no config, want 200", code)
	}
	resp, err := p.client.Get("http://" + p.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	p := startProxyArgs(t, []string{"demo"}, "")
	c := newClient(t, 10*time.Second)
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"default goes to stable", nil, "stable"},
		{"X-API-Version 2 goes to canary", http.Header{"X-Api-Version": {"2"}}, "canary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, c, http.MethodGet, p.url("/api/users"), "", tc.header, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/users = %d, want 200 (%q)", resp.StatusCode, b)
			}
			var got struct {
				Upstream string `json:"upstream"`
				Path     string `json:"path"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", b, err)
			}
			if got.Upstream != tc.want {
				t.Errorf("upstream = %q, want %q", got.Upstream, tc.want)
			}
			if got.Path != "/api/users" {
				t.Errorf("upstream path = %q, want /api/users", got.Path)
			}
		})
	}
	p.signal(t, syscall.SIGINT)
	code, ok := p.wait(5 * time.Second)
	if !ok {
		t.Fatal("demo still running 5s after SIGINT")
	}
	if code != 0 {
		t.Errorf("demo exit = %d after SIGINT, want 0", code)
	}
}

// TestConfigVersionCanonical checks the version is a hash of the config's
// content, not its bytes: the same config in JSON, or in YAML with other
// key order and layout, has the same version; a real change does not.
func TestConfigVersionCanonical(t *testing.T) {
	t.Parallel()
	base := configVersion(t, validConfig)
	tests := []struct {
		name, ext, cfg string
		same           bool
	}{
		{"json", ".json", `{"pools":[{"id":"api-pool","balancer":"round_robin","endpoints":[{"address":"127.0.0.1:9","weight":2}],
 "transport":{"dial_timeout":"1s","response_header_timeout":"2s"}}],
 "routes":[{"id":"api","path_prefix":"/api","methods":["GET"],"pool":"api-pool","policy":"p1"}],
 "policies":[{"id":"p1","timeout":"2s","body_size_limit":"1MB"}],
 "logging":{"access_log":true,"redact_query":true},"metrics":{"enabled":true,"path":"/metrics"},
 "shutdown":{"drain_delay":"1s","grace_period":"5s"}}`, true},
		{"yaml reordered", ".yaml", `# same config, other order and style
shutdown:
  grace_period: 5s
  drain_delay: 1s
metrics: {path: /metrics, enabled: true}
logging: {redact_query: true, access_log: true}
pools:
  - transport: {response_header_timeout: 2s, dial_timeout: 1s}
    endpoints:
      - {weight: 2, address: "127.0.0.1:9"}
    balancer: round_robin
    id: api-pool
policies:
  - {body_size_limit: 1MB, timeout: 2s, id: p1}
routes:
  - {policy: p1, pool: api-pool, methods: [GET], path_prefix: /api, id: api}
`, true},
		{"changed", ".yaml", strings.Replace(validConfig, "timeout: 2s", "timeout: 3s", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config"+tc.ext)
			writeFileAtomic(t, path, tc.cfg)
			stdout, stderr, code := runCmd(t, 30*time.Second, "-validate", "-config-file", path)
			m := versionRE.FindStringSubmatch(stdout)
			if code != 0 || m == nil {
				t.Fatalf("proxy -validate %s = exit %d, stdout %q, stderr %q; want valid", tc.ext, code, stdout, stderr)
			}
			if got := m[1] == base; got != tc.same {
				t.Errorf("version %q vs base %q: same = %v, want %v", m[1], base, got, tc.same)
			}
		})
	}
}

// TestConfigFileFromEnv starts the proxy with PROXY_CONFIG_FILE and checks
// the -config-file flag beats it.
func TestConfigFileFromEnv(t *testing.T) {
	t.Parallel()
	envUp, flagUp := newEcho(t, "env"), newEcho(t, "flag")
	dir := t.TempDir()
	envCfg, flagCfg := filepath.Join(dir, "env.yaml"), filepath.Join(dir, "flag.yml")
	writeFileAtomic(t, envCfg, oneRoute(envUp.addr, ""))
	writeFileAtomic(t, flagCfg, oneRoute(flagUp.addr, ""))
	tests := []struct {
		name string
		cfg  string // -config-file, "" for none
		want string
	}{
		{"env only", "", "env"},
		{"flag beats env", flagCfg, "flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxyEnv(t, []string{"PROXY_CONFIG_FILE=" + envCfg}, tc.cfg)
			c := newClient(t, 10*time.Second)
			resp, _ := do(t, c, http.MethodGet, p.url("/x"), "", nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != tc.want {
				t.Errorf("GET /x = %d from %q, want 200 from %q", resp.StatusCode, resp.Header.Get("X-Upstream"), tc.want)
			}
		})
	}
}
