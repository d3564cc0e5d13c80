package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplyRollbackUnderLoad is the control-plane bar: 100 applies and
// rollbacks through the admin API while 50 connections send requests, with
// zero failed requests and every response served by exactly one config
// version (the access log's config_version agrees with the upstream the
// client saw, request by request).
func TestApplyRollbackUnderLoad(t *testing.T) {
	t.Parallel()
	const actions, workers = 100, 50
	ua := newUpstream(t, "a", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	ub := newUpstream(t, "b", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	cfgA := configDoc(t, []map[string]any{route("hot", "/hot", "pa")}, []map[string]any{pool("pa", ua.addr)})
	cfgB := configDoc(t, []map[string]any{route("hot", "/hot", "pb")}, []map[string]any{pool("pb", ub.addr)})
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, "")
	apply := func(cfg map[string]any) string {
		resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfg})
		if resp.StatusCode != 200 {
			t.Fatalf("apply = %d %v", resp.StatusCode, out)
		}
		return out["version"].(string)
	}
	vA := apply(cfgA)
	vB := apply(cfgB)
	vA2 := apply(cfgA)
	if vA2 != vA || vA == vB {
		t.Fatalf("versions A=%s B=%s A again=%s", vA, vB, vA2)
	}
	upstreamFor := map[string]string{vA: "a", vB: "b"}

	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]string{} // request id -> upstream the client saw
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, n)
				req, _ := http.NewRequest("GET", p.url("/hot"), nil)
				req.Header.Set("X-Request-Id", id)
				resp, err := c.Do(req)
				var b []byte
				if err == nil {
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if err == nil && resp.StatusCode == 200 && (string(b) == "a" || string(b) == "b") {
					ok.Add(1)
					seen[id] = string(b)
				} else {
					failed.Add(1)
					if len(failures) < 5 {
						failures = append(failures, fmt.Sprintf("%v %v %q", err, resp, b))
					}
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	time.Sleep(200 * time.Millisecond)
	for i := range actions {
		var resp *http.Response
		var out map[string]any
		if i%2 == 0 {
			resp, out = adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfgB})
		} else {
			resp, out = adminCall(t, p, "POST", "/api/v2/config/rollback", testToken, map[string]any{})
		}
		if resp.StatusCode != 200 || out["unchanged"] == true {
			t.Fatalf("action %d = %d %v, want a real change", i, resp.StatusCode, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stopLoad()

	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during %d applies and rollbacks, e.g. %v", failed.Load(), ok.Load()+failed.Load(), actions, failures)
	}
	// Every response came from one version: the access-log record of each
	// request names a version whose pool is the upstream the client saw.
	checked := 0
	eventually(t, 10*time.Second, func() error {
		checked = 0
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range p.accessLog() {
			id, _ := rec["request_id"].(string)
			got, ok := seen[id]
			if !ok {
				continue
			}
			v, _ := rec["config_version"].(string)
			if want := upstreamFor[v]; want != got {
				t.Fatalf("request %s: served by upstream %q, but the access log says config %q (upstream %q)", id, got, v, want)
			}
			checked++
		}
		if checked < len(seen) {
			return fmt.Errorf("%d of %d requests in the access log so far", checked, len(seen))
		}
		return nil
	})
	t.Logf("%d requests, 0 failed, %d applies and rollbacks; every response matched its config version", ok.Load(), actions)
}

// TestAuditFile: every control-plane action lands in -audit-file as a hash
// chain that `proxy audit verify` accepts; editing a record is caught and
// named, and the proxy refuses to extend a tampered chain.
func TestAuditFile(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "a")
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfgPath := filepath.Join(dir, "proxy.yaml")
	writeFileAtomic(t, cfgPath, fmt.Sprintf("routes:\n  - {id: web, path_prefix: /, pool: p}\npools:\n  - {id: p, endpoints: [{address: %s}]}\n", up.addr)+fastShutdown)
	env := []string{"ADMIN_TOKEN=" + testToken}
	p := startProxyEnv(t, env, cfgPath, "-audit-file", auditPath)
	cfgB := configDoc(t, []map[string]any{route("web", "/", "p"), route("api", "/api", "p")}, []map[string]any{pool("p", up.addr)})
	if resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfgB}); resp.StatusCode != 200 {
		t.Fatalf("apply = %d %v", resp.StatusCode, out)
	}
	bad := configDoc(t, []map[string]any{route("web", "/", "nope")}, nil)
	if resp, _ := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": bad}); resp.StatusCode != 422 {
		t.Fatalf("bad apply = %d, want 422", resp.StatusCode)
	}
	if resp, out := adminCall(t, p, "POST", "/api/v2/config/rollback", testToken, map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("rollback = %d %v", resp.StatusCode, out)
	}
	p.signal(t, os.Interrupt)
	p.wait(15 * time.Second)

	stdout, stderr, code := runCmd(t, 30*time.Second, "audit", "verify", auditPath)
	if code != 0 || !strings.Contains(stdout, "4 records") {
		t.Fatalf("audit verify = exit %d, %q %q; want 0 and 4 records (startup, apply, reject, rollback)", code, stdout, stderr)
	}
	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for i, want := range []string{`"action":"apply"`, `"action":"apply"`, `"result":"rejected"`, `"action":"rollback"`} {
		if !strings.Contains(lines[i], want) {
			t.Fatalf("audit line %d = %s, want %s", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], `"actor":"startup"`) || !strings.Contains(lines[1], `"actor":"admin 127.0.0.1"`) {
		t.Fatalf("audit actors: %s / %s", lines[0], lines[1])
	}

	// A restart continues the chain.
	p = startProxyEnv(t, env, cfgPath, "-audit-file", auditPath)
	p.signal(t, os.Interrupt)
	p.wait(15 * time.Second)
	if stdout, _, code := runCmd(t, 30*time.Second, "audit", "verify", auditPath); code != 0 || !strings.Contains(stdout, "5 records") {
		t.Fatalf("after a restart, audit verify = exit %d %q; want 5 intact records", code, stdout)
	}

	// Tamper with record 2: verify names it, and the proxy will not start
	// on the file.
	raw, _ = os.ReadFile(auditPath)
	lines = strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	lines[1] = strings.Replace(lines[1], `"actor":"admin 127.0.0.1"`, `"actor":"admin 10.6.6.6"`, 1)
	writeFileAtomic(t, auditPath, strings.Join(lines, "\n")+"\n")
	stdout, _, code = runCmd(t, 30*time.Second, "audit", "verify", auditPath)
	if code != 1 || !strings.Contains(stdout, "record 2") {
		t.Fatalf("tampered audit verify = exit %d %q; want 1 naming record 2", code, stdout)
	}
	q := startProcEnv(t, env, "-http-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-config-file", cfgPath, "-audit-file", auditPath)
	if code, ok := q.wait(15 * time.Second); !ok || code == 0 || !strings.Contains(q.stderr.String(), "record 2") {
		q.kill()
		t.Fatalf("proxy on a tampered audit file: exit %d (exited %v), stderr %q; want a refusal naming record 2", code, ok, tail(q.stderr.String(), 3))
	}
}
