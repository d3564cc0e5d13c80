package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lifecycleConfig builds a config with route/pool "a" always and the
// others when their address is not empty.
func lifecycleConfig(addrs map[string]string) string {
	var routes, pools strings.Builder
	for _, id := range []string{"a", "b", "c", "slow"} {
		addr, ok := addrs[id]
		if !ok {
			continue
		}
		fmt.Fprintf(&routes, "  - {id: r-%s, path: /%s, pool: p-%s}\n", id, id, id)
		fmt.Fprintf(&pools, "  - {id: p-%s, endpoints: [{address: %s}]}\n", id, addr)
	}
	return "routes:\n" + routes.String() + "pools:\n" + pools.String() + fastShutdown
}

// getStatus returns the status and X-Upstream of GET path.
func getStatus(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Upstream")
}

func TestConfigLifecycle(t *testing.T) {
	t.Parallel()
	ups := map[string]*upstream{}
	for _, id := range []string{"a", "b", "c"} {
		ups[id] = newEcho(t, id)
	}
	slowStarted := make(chan struct{}, 1)
	ups["slow"] = newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case slowStarted <- struct{}{}:
		default:
		}
		select {
		case <-time.After(1500 * time.Millisecond):
			io.WriteString(w, "slow done")
		case <-r.Context().Done():
		}
	})
	addrs := func(ids ...string) map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			m[id] = ups[id].addr
		}
		return m
	}

	// The config path is a symlink into another directory: rewriting the
	// target makes no event in the watched directory, so only SIGHUP can
	// pick that change up.
	linkDir, realDir := t.TempDir(), t.TempDir()
	target := filepath.Join(realDir, "real.yaml")
	link := filepath.Join(linkDir, "proxy.yaml")
	writeFileAtomic(t, target, lifecycleConfig(addrs("a", "slow")))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	p := startProxyArgs(t, nil, link)
	c := newClient(t, 10*time.Second)
	m0 := p.metrics(t)
	accepted0 := sumSamples(m0, "proxy_config_applies_total", map[string]string{"result": "accepted"})
	rejected0 := sumSamples(m0, "proxy_config_applies_total", map[string]string{"result": "rejected"})

	expectRoute := func(t *testing.T, path string, wantStatus int, wantUp string) {
		t.Helper()
		if code, up := getStatus(t, c, p.url(path)); code != wantStatus || up != wantUp {
			t.Errorf("GET %s = %d from %q, want %d from %q", path, code, up, wantStatus, wantUp)
		}
	}
	waitRoute := func(t *testing.T, path string, wantStatus int, wantUp string, within time.Duration) {
		t.Helper()
		eventually(t, within, func() error {
			if code, up := getStatus(t, c, p.url(path)); code != wantStatus || up != wantUp {
				return fmt.Errorf("GET %s = %d from %q, want %d from %q", path, code, up, wantStatus, wantUp)
			}
			return nil
		})
	}
	expectRoute(t, "/a", 200, "a")
	expectRoute(t, "/b", 404, "")

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SIGHUP applies a valid change", func(t *testing.T) {
			writeFileAtomic(t, target, lifecycleConfig(addrs("a", "b", "slow")))
			p.signal(t, syscall.SIGHUP)
			waitRoute(t, "/b", 200, "b", 2*time.Second)
			expectRoute(t, "/a", 200, "a")
		}},
		{"SIGHUP with an invalid file keeps the old config", func(t *testing.T) {
			_, version := p.readyVersion(t)
			before := strings.Count(p.stderr.String(), "config rejected")
			writeFileAtomic(t, target, "routes:\n  - {id: r-a, path: /a, pool: missing}\n"+fastShutdown)
			p.signal(t, syscall.SIGHUP)
			eventually(t, 2*time.Second, func() error {
				if n := strings.Count(p.stderr.String(), "config rejected"); n <= before {
					return fmt.Errorf("stderr has %d \"config rejected\" messages, want %d", n, before+1)
				}
				return nil
			})
			expectRoute(t, "/a", 200, "a")
			expectRoute(t, "/b", 200, "b")
			if _, v := p.readyVersion(t); v != version {
				t.Errorf("/ready version = %q after a rejected config, want unchanged %q", v, version)
			}
		}},
		{"file rewrite applies without a signal", func(t *testing.T) {
			start := time.Now()
			writeFileAtomic(t, link, lifecycleConfig(addrs("a", "b", "c", "slow")))
			waitRoute(t, "/c", 200, "c", 2*time.Second)
			t.Logf("file change applied after %v", time.Since(start))
		}},
		{"in-flight request survives removal of its route and pool", func(t *testing.T) {
			type result struct {
				code int
				body string
				err  error
				at   time.Time
			}
			done := make(chan result, 1)
			go func() {
				resp, err := c.Get(p.url("/slow"))
				if err != nil {
					done <- result{err: err, at: time.Now()}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- result{code: resp.StatusCode, body: string(b), err: err, at: time.Now()}
			}()
			select {
			case <-slowStarted:
			case <-time.After(3 * time.Second):
				t.Fatal("slow upstream never got the request")
			}
			next := lifecycleConfig(addrs("a", "b", "c"))
			nextVersion := configVersion(t, next)
			writeFileAtomic(t, link, next)
			// Probing /slow itself would wait on the slow upstream while
			// the route exists, so watch the version instead.
			eventually(t, 2*time.Second, func() error {
				if _, v := p.readyVersion(t); v != nextVersion {
					return fmt.Errorf("/ready version = %q, want %q", v, nextVersion)
				}
				return nil
			})
			removed := time.Now()
			expectRoute(t, "/slow", 404, "")
			r := <-done
			if r.err != nil || r.code != 200 || r.body != "slow done" {
				t.Errorf("in-flight GET /slow = %d %q (err %v), want 200 %q", r.code, r.body, r.err, "slow done")
			}
			if !removed.Before(r.at) {
				t.Errorf("route removal seen at %v, after the in-flight request ended at %v: the swap was too slow to test this", removed, r.at)
			}
		}},
		{"SIGHUP with the file gone keeps the old config", func(t *testing.T) {
			saved, err := os.ReadFile(link)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			p.signal(t, syscall.SIGHUP)
			time.Sleep(300 * time.Millisecond)
			if p.exited() {
				t.Fatalf("proxy exited on SIGHUP with a missing config file, want it serving; stderr:\n%s", tail(p.stderr.String(), 5))
			}
			expectRoute(t, "/a", 200, "a")
			expectRoute(t, "/c", 200, "c")
			writeFileAtomic(t, link, string(saved))
		}},
		{"changed endpoint of a kept pool takes effect", func(t *testing.T) {
			// Pool p-a keeps its id but now points at upstream c.
			m := addrs("a", "b", "c")
			m["a"] = ups["c"].addr
			writeFileAtomic(t, link, lifecycleConfig(m))
			p.signal(t, syscall.SIGHUP)
			waitRoute(t, "/a", 200, "c", 2*time.Second)
			writeFileAtomic(t, link, lifecycleConfig(addrs("a", "b", "c")))
			p.signal(t, syscall.SIGHUP)
			waitRoute(t, "/a", 200, "a", 2*time.Second)
		}},
		{"metrics count applies", func(t *testing.T) {
			m := p.metrics(t)
			accepted := sumSamples(m, "proxy_config_applies_total", map[string]string{"result": "accepted"}) - accepted0
			rejected := sumSamples(m, "proxy_config_applies_total", map[string]string{"result": "rejected"}) - rejected0
			// Accepted: b, c, removal of slow, changed endpoint, restored
			// endpoint. Rejected: the invalid file (the missing file is a
			// read error, which may or may not count as a rejection).
			if accepted < 5 {
				t.Errorf("proxy_config_applies_total{result=\"accepted\"} grew by %v, want >= 5", accepted)
			}
			if rejected < 1 || rejected > 2 {
				t.Errorf("proxy_config_applies_total{result=\"rejected\"} grew by %v, want 1 (or 2 counting the missing file)", rejected)
			}
			_, version := p.readyVersion(t)
			vs := findSamples(m, "proxy_config_version_info", nil)
			if len(vs) != 1 || vs[0].labels["version"] != version || vs[0].value != 1 {
				t.Errorf("proxy_config_version_info = %v, want one series {version=%q} 1", vs, version)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			t.Fatalf("step %q failed; later steps depend on it", st.name)
		}
	}
}

// bigConfig is a 1,000-route config: /hot on pool hot, shared by every
// variant, plus 999 routes and a pool unique to variant.
func bigConfig(variant, addr string) string {
	var b strings.Builder
	b.WriteString("routes:\n  - {id: hot, path: /hot, pool: hot}\n")
	for i := range 999 {
		fmt.Fprintf(&b, "  - {id: %s-%d, path_prefix: /%s/%d, pool: %s-pool}\n", variant, i, variant, i, variant)
	}
	fmt.Fprintf(&b, "pools:\n  - {id: hot, endpoints: [{address: %s}]}\n  - {id: %s-pool, endpoints: [{address: %s}]}\n", addr, variant, addr)
	return b.String() + fastShutdown
}

var versionRE = regexp.MustCompile(`valid \(version ([^)\s]+)\)`)

// configVersion runs proxy -validate on cfg and returns the version.
func configVersion(t testing.TB, cfg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.yaml")
	writeFileAtomic(t, path, cfg)
	stdout, stderr, code := runCmd(t, 30*time.Second, "-validate", "-config-file", path)
	m := versionRE.FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("proxy -validate = exit %d, stdout %q, stderr %q; want exit 0 and a version", code, stdout, tail(stderr, 5))
	}
	return m[1]
}

func TestConfigSwapUnderLoad(t *testing.T) {
	t.Parallel()
	const swaps, workers = 100, 50
	hot := newUpstream(t, "hot", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hot")
	})
	cfgs := [2]string{bigConfig("x", hot.addr), bigConfig("y", hot.addr)}
	versions := [2]string{configVersion(t, cfgs[0]), configVersion(t, cfgs[1])}
	if versions[0] == versions[1] {
		t.Fatalf("both configs have version %q, want different versions", versions[0])
	}
	p := startProxy(t, cfgs[0])
	if _, v := p.readyVersion(t); v != versions[0] {
		t.Fatalf("/ready version = %q, want %q (from -validate)", v, versions[0])
	}

	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(p.url("/hot"))
				var b []byte
				if err == nil {
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 && string(b) == "hot" && resp.Header.Get("X-Upstream") == "hot" {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				if len(failures) < 5 {
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, fmt.Sprintf("%d %q X-Proxy-Error=%q", resp.StatusCode, b, resp.Header.Get("X-Proxy-Error")))
					}
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	start := time.Now()
	deadline := start.Add(60 * time.Second)
	done := 0
	for i := 1; i <= swaps && time.Now().Before(deadline); i++ {
		v := i % 2
		p.writeConfig(t, cfgs[v])
		p.signal(t, syscall.SIGHUP)
		for {
			if _, got := p.readyVersion(t); got == versions[v] {
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, got := p.readyVersion(t); got == versions[v] {
			done++
		}
	}
	took := time.Since(start)
	stopLoad()
	t.Logf("%d swaps in %v; %d requests ok, %d failed", done, took, ok.Load(), failed.Load())
	if done != swaps {
		t.Errorf("completed %d of %d config swaps within 60s, want all", done, swaps)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during swaps, want 0; first failures: %v", n, n+ok.Load(), failures)
	}
	if ok.Load() < workers {
		t.Errorf("only %d requests succeeded, want at least %d (the load never ran)", ok.Load(), workers)
	}
	if code, up := getStatus(t, c, p.url("/x/5")); code != 200 || up != "hot" {
		t.Errorf("GET /x/5 after the last swap (config x) = %d from %q, want 200 from hot", code, up)
	}
}
