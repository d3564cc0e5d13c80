package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ctl runs "proxy ctl args..." against p with the admin token in the
// environment and returns stdout, stderr and the exit code.
func ctl(t testing.TB, p *proxyServer, args ...string) (string, string, int) {
	t.Helper()
	full := append([]string{"ctl"}, args...)
	full = append(full, "-admin-url", "http://"+p.admin)
	c := startProcEnv(t, []string{"ADMIN_TOKEN=" + testToken}, full...)
	code, ok := c.wait(60 * time.Second)
	if !ok {
		c.kill()
		t.Fatalf("proxy %v did not finish", full)
	}
	return c.stdout.String(), c.stderr.String(), code
}

// TestCtlAgainstRealProxy drives the operator CLI through a whole change:
// validate, diff, apply, a conditional apply that loses, status, versions,
// explain and rollback, checking output and exit codes.
func TestCtlAgainstRealProxy(t *testing.T) {
	t.Parallel()
	a, b := newEcho(t, "a"), newEcho(t, "b")
	dir := t.TempDir()
	cfgA := filepath.Join(dir, "a.yaml")
	writeFileAtomic(t, cfgA, fmt.Sprintf("routes:\n  - {id: web, path_prefix: /, pool: p}\npools:\n  - {id: p, endpoints: [{address: %s}]}\n", a.addr)+fastShutdown)
	cfgB := filepath.Join(dir, "b.yaml")
	writeFileAtomic(t, cfgB, fmt.Sprintf("routes:\n  - {id: web, path_prefix: /, pool: p}\n  - {id: api, path_prefix: /api, methods: [GET], pool: p}\npools:\n  - {id: p, endpoints: [{address: %s}]}\n", b.addr)+fastShutdown)
	bad := filepath.Join(dir, "bad.yaml")
	writeFileAtomic(t, bad, "routes:\n  - {id: web, path_prefix: /, pool: nope}\n")
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, cfgA)
	_, vA := p.readyVersion(t)

	steps := []struct {
		args     []string
		wantCode int
		want     []string // substrings of stdout
	}{
		{[]string{"validate", cfgB}, 0, []string{"valid: version "}},
		{[]string{"validate", bad}, 1, []string{"invalid: 1 error", `routes[0].pool`}},
		{[]string{"diff", cfgB}, 0, []string{"+ routes[api]", "- pools[p].endpoints[", "changes (" + vA}},
		{[]string{"apply", "-expected-version", "0000000000000000", cfgB}, 1, nil},
		{[]string{"apply", bad}, 1, []string{"rejected: 1 error"}},
		{[]string{"apply", "-expected-version", vA, cfgB}, 0, []string{"applied version ", "(was " + vA + ")"}},
		{[]string{"apply", cfgB}, 0, []string{"unchanged: version "}},
		{[]string{"status"}, 0, []string{"routes:     2", "source:     admin"}},
		{[]string{"versions"}, 0, []string{vA, "admin", "startup"}},
		{[]string{"explain", "-host", "x", "-path", "/api/v", "-method", "GET"}, 0, []string{"route api (pool p", "web", "lost"}},
		{[]string{"explain", "-host", "x", "-path", "/api/v", "-method", "DELETE"}, 0, []string{"route web"}},
		{[]string{"rollback"}, 0, []string{"rolled back to version " + vA}},
		{[]string{"rollback", "-to", "ffffffffffffffff"}, 1, nil},
		{[]string{"apply"}, 2, nil},
		{[]string{"frobnicate"}, 2, nil},
	}
	for _, st := range steps {
		stdout, stderr, code := ctl(t, p, st.args...)
		if code != st.wantCode {
			t.Fatalf("proxy ctl %v = exit %d, want %d\nstdout: %s\nstderr: %s", st.args, code, st.wantCode, stdout, stderr)
		}
		for _, w := range st.want {
			if !strings.Contains(stdout, w) {
				t.Fatalf("proxy ctl %v stdout lacks %q:\n%s", st.args, w, stdout)
			}
		}
		if strings.Contains(stdout+stderr, testToken) {
			t.Fatalf("proxy ctl %v printed the token", st.args)
		}
	}
	if got := upstreamOf(t, p, "/x"); got != "a" {
		t.Fatalf("after the rollback, /x served by %q, want a", got)
	}
	// JSON output is the server's answer.
	stdout, _, code := ctl(t, p, "versions", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"versions"`) {
		t.Fatalf("versions -o json = exit %d\n%s", code, stdout)
	}
	// A wrong token is a failed action with a clear reason.
	c := startProcEnv(t, []string{"ADMIN_TOKEN=wrong"}, "ctl", "status", "-admin-url", "http://"+p.admin)
	code, _ = c.wait(60 * time.Second)
	if code != 1 || !strings.Contains(c.stderr.String(), "401") {
		t.Fatalf("ctl with a wrong token = exit %d, stderr %q; want 1 and a 401", code, c.stderr)
	}
	os.Remove(bad)
}
