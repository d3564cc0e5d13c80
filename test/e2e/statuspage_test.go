package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestStatusPageInChromium opens the admin status page in real headless
// Chromium: the page loads, shows the live version, and follows an apply
// without being reloaded (its script re-fetches the live part).
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("this test needs Chromium: apt-get install chromium (make test and .ci/run install it): %v", err)
	}
	up := newEcho(t, "a")
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, "")
	apply := func(cfg map[string]any) string {
		resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": cfg})
		if resp.StatusCode != 200 {
			t.Fatalf("apply = %d %v", resp.StatusCode, out)
		}
		return out["version"].(string)
	}
	v1 := apply(configDoc(t, []map[string]any{route("web", "/", "p")}, []map[string]any{pool("p", up.addr)}))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // the CI machine runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + testToken}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.admin+"/")); err != nil {
		t.Fatalf("loading the status page in Chromium: %v", err)
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("`+id+`").textContent`))
		if err != nil {
			t.Fatalf("reading #%s: %v", id, err)
		}
		return s
	}
	version, routes := text("version"), text("routes")
	if version != v1 || !strings.Contains(routes, "web") {
		t.Fatalf("status page shows version %q and routes %q; want %s and route web", version, routes, v1)
	}

	v2 := apply(configDoc(t, []map[string]any{route("web", "/", "p"), route("api", "/api", "p")},
		[]map[string]any{pool("p", up.addr)}))
	deadline := time.Now().Add(20 * time.Second)
	for {
		version, routes = text("version"), text("routes")
		if version == v2 && strings.Contains(routes, "api") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the apply the page still shows version %q (want %s) and routes %q", version, v2, routes)
		}
		time.Sleep(250 * time.Millisecond)
	}
	audit := text("audit")
	if !strings.Contains(audit, v2) || !strings.Contains(audit, "apply") {
		t.Fatalf("audit section %q does not show the apply of %s", audit, v2)
	}
}
