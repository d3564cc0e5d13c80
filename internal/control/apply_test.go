package control

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

const cfgA = `
routes:
  - {id: a, path_prefix: /a, pool: p}
pools:
  - {id: p, endpoints: [{address: "127.0.0.1:1"}]}
`

const cfgB = `
routes:
  - {id: a, path_prefix: /a, pool: p}
  - {id: b, path_prefix: /b, pool: q}
pools:
  - {id: p, endpoints: [{address: "127.0.0.1:1"}]}
  - {id: q, endpoints: [{address: "127.0.0.1:2"}]}
`

func newApplier(t *testing.T) (*Applier, *snapshot.Holder) {
	t.Helper()
	var h snapshot.Holder
	st := upstream.NewState(nil)
	t.Cleanup(st.Close)
	return NewApplier(&h, st, nil, nil), &h
}

func match(h *snapshot.Holder, path string) router.Status {
	return h.Load().Router.Match("example.com", "GET", path, "", http.Header{}).Status
}

func TestApplierLifecycle(t *testing.T) {
	a, h := newApplier(t)
	if v := h.Load().Version; v != "" {
		t.Fatalf("initial version = %q, want the empty snapshot", v)
	}
	if got := match(h, "/a"); got != router.NotFound {
		t.Fatalf("empty snapshot match = %v, want NotFound", got)
	}

	resA, err := a.ApplyBytes([]byte(cfgA), config.FormatYAML, SourceStartup)
	if err != nil {
		t.Fatalf("apply A: %v", err)
	}
	if resA.Unchanged || resA.PreviousVersion != "" || h.Load().Version != resA.Version {
		t.Fatalf("apply A result = %+v, holder version %q", resA, h.Load().Version)
	}
	poolP := h.Load().Pools["p"].Endpoints()[0]

	// Same content again: a no-op, the snapshot pointer does not move.
	before := h.Load()
	res, err := a.ApplyBytes([]byte(cfgA), config.FormatYAML, SourceFile)
	if err != nil || !res.Unchanged || h.Load() != before {
		t.Fatalf("re-apply A = %+v, %v; snapshot replaced: %v", res, err, h.Load() != before)
	}

	// An invalid config changes nothing.
	_, err = a.ApplyBytes([]byte("routes: [{id: x, pool: missing}]"), config.FormatYAML, SourceFile)
	var fe config.Errors
	if !errors.As(err, &fe) {
		t.Fatalf("invalid apply err = %v, want config.Errors", err)
	}
	if h.Load() != before {
		t.Fatalf("invalid config replaced the snapshot")
	}
	// A parse error changes nothing either.
	if _, err := a.ApplyBytes([]byte("routes: [unclosed"), config.FormatYAML, SourceFile); err == nil {
		t.Fatalf("parse error accepted")
	}
	if h.Load() != before {
		t.Fatalf("unparsable config replaced the snapshot")
	}

	resB, err := a.ApplyBytes([]byte(cfgB), config.FormatYAML, SourceFile)
	if err != nil {
		t.Fatalf("apply B: %v", err)
	}
	if resB.PreviousVersion != resA.Version {
		t.Errorf("previous version = %q, want %q", resB.PreviousVersion, resA.Version)
	}
	if got := match(h, "/b"); got != router.Matched {
		t.Errorf("after B, /b = %v, want Matched", got)
	}
	// The surviving endpoint keeps its runtime entry (and its connections).
	if got := h.Load().Pools["p"].Endpoints()[0]; got != poolP {
		t.Errorf("endpoint of surviving pool p was replaced on apply")
	}
	if a.Active() == nil || a.Active().Version() != resB.Version {
		t.Errorf("Active() does not return the applied config")
	}
}

func TestApplierValidateTouchesNothing(t *testing.T) {
	a, h := newApplier(t)
	if _, err := a.ApplyBytes([]byte(cfgA), config.FormatYAML, SourceStartup); err != nil {
		t.Fatal(err)
	}
	before := h.Load()
	cfg, err := config.Parse([]byte(cfgB), config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(cfg); err != nil {
		t.Fatalf("Validate(B) = %v", err)
	}
	if h.Load() != before {
		t.Errorf("Validate swapped the snapshot")
	}
	bad, _ := config.Parse([]byte(strings.Replace(cfgB, "pool: q", "pool: nope", 1)), config.FormatYAML)
	if err := a.Validate(bad); err == nil {
		t.Errorf("Validate accepted a config with a missing pool")
	}
}

func TestInFlightRequestKeepsItsSnapshot(t *testing.T) {
	// A request that loaded snapshot A keeps a usable route and pool after B
	// replaces it and A's pool is released.
	a, h := newApplier(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	cfg := strings.ReplaceAll(cfgA, "127.0.0.1:1", up.Listener.Addr().String())
	if _, err := a.ApplyBytes([]byte(cfg), config.FormatYAML, SourceStartup); err != nil {
		t.Fatal(err)
	}
	old := h.Load()
	if _, err := a.ApplyBytes([]byte("routes: []\n"), config.FormatYAML, SourceFile); err != nil {
		t.Fatal(err)
	}
	ep := old.Pools["p"].Endpoints()[0]
	req, _ := http.NewRequest("GET", "http://"+ep.Address()+"/a", nil)
	resp, err := ep.Transport().RoundTrip(req)
	if err != nil {
		t.Fatalf("round trip on the released endpoint: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status = %d", resp.StatusCode)
	}
}

func TestListenerSettingsChanged(t *testing.T) {
	base := config.Server{MaxHeaderCount: 100, TrustedProxies: []string{"10.0.0.0/8"}}
	tests := []struct {
		desc string
		next config.Server
		want bool
	}{
		{"same", base, false},
		{"only trusted proxies", config.Server{MaxHeaderCount: 100, TrustedProxies: []string{"192.0.2.0/24"}}, false},
		{"a limit", config.Server{MaxHeaderCount: 50, TrustedProxies: base.TrustedProxies}, true},
		{"h2c", config.Server{MaxHeaderCount: 100, H2C: true, TrustedProxies: base.TrustedProxies}, true},
	}
	for _, tt := range tests {
		if got := listenerSettingsChanged(base, tt.next); got != tt.want {
			t.Errorf("%s: listenerSettingsChanged = %v, want %v", tt.desc, got, tt.want)
		}
	}
}
