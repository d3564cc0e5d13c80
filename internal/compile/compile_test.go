package compile

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/upstream"
)

func build(t *testing.T, yaml string) (*config.Config, *upstream.State) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := upstream.NewState(nil)
	t.Cleanup(st.Close)
	return cfg, st
}

func TestSnapshot(t *testing.T) {
	cfg, st := build(t, `
version: release-7
server: {trusted_proxies: [10.0.0.0/8, 192.0.2.1]}
routes:
  - {id: api, host: api.example.com, path_prefix: /v1, pool: hashed, policy: strict, rewrite: {path_prefix: /}}
  - {id: web, pool: plain}
policies:
  - {id: strict, timeout: 3s, body_size_limit: 1MB, require_tls: true}
pools:
  - {id: hashed, balancer: consistent_hash, hash_key: client_ip, endpoints: [{address: "127.0.0.1:1", weight: 3}]}
  - {id: plain, endpoints: [{address: "127.0.0.1:2"}]}
logging: {access_log: false, redact_query: true}
`)
	s, err := Snapshot(cfg, Deps{State: st})
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != cfg.Version() || s.Label != "release-7" {
		t.Errorf("version/label = %q/%q", s.Version, s.Label)
	}
	if s.AccessLog {
		t.Errorf("AccessLog = true, want false")
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if len(s.TrustedProxies) != 2 || s.TrustedProxies[0] != want[0] || s.TrustedProxies[1] != want[1] {
		t.Errorf("TrustedProxies = %v, want %v", s.TrustedProxies, want)
	}
	if len(s.Routes) != 2 || len(s.PoolList) != 2 {
		t.Fatalf("routes/pools = %d/%d", len(s.Routes), len(s.PoolList))
	}
	api := s.Routes[0]
	if api.Policy == nil || api.Policy.Timeout.String() != "3s" || api.Policy.BodySizeLimit != 1<<20 || !api.Policy.RequireTLS {
		t.Errorf("api policy = %+v", api.Policy)
	}
	fw, ok := api.Handler.(*proxy.Forwarder)
	if !ok {
		t.Fatalf("api handler is %T, want *proxy.Forwarder", api.Handler)
	}
	if !fw.HasRewrite || fw.RewritePrefix != "/" || !fw.NeedClientIP || fw.Via != Via || len(fw.TrustedProxies) != 2 {
		t.Errorf("forwarder = %+v", fw)
	}
	if web := s.Routes[1].Handler.(*proxy.Forwarder); web.NeedClientIP {
		t.Errorf("round-robin pool needs no client IP")
	}
	res := s.Router.Match("API.example.com:443", "GET", "/v1/x", "", http.Header{})
	if res.Status != router.Matched || res.Rule.Value != api {
		t.Errorf("match = %v, want route api", res.Status)
	}
	if res := s.Router.Match("other", "GET", "/v1/x", "", http.Header{}); res.Rule == nil || res.Rule.Value.ID != "web" {
		t.Errorf("fallback match did not pick web")
	}
}

func TestEmpty(t *testing.T) {
	s := Empty()
	if s.Version != "" || s.Router == nil || len(s.Routes) != 0 {
		t.Fatalf("Empty() = %+v", s)
	}
	if got := s.Router.Match("x", "GET", "/", "", http.Header{}).Status; got != router.NotFound {
		t.Errorf("empty match = %v, want NotFound", got)
	}
}

func TestMetricsToken(t *testing.T) {
	cfg, err := config.Parse([]byte("metrics: {require_token: true, token_env: SCRAPE}\n"), config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	st := upstream.NewState(nil)
	defer st.Close()
	_, err = Snapshot(cfg, Deps{State: st, LookupEnv: lookup})
	var fe config.Errors
	if !errors.As(err, &fe) || fe[0].Path != "metrics.require_token" || !strings.Contains(fe[0].Message, "SCRAPE") {
		t.Fatalf("unset token variable: err = %v, want an error at metrics.require_token naming SCRAPE", err)
	}
	env["SCRAPE"] = "s3cret"
	snap, err := Snapshot(cfg, Deps{State: st, LookupEnv: lookup})
	if err != nil || snap.MetricsToken != "s3cret" {
		t.Fatalf("Snapshot = %v, token %q; want the token from the environment", err, snap.MetricsToken)
	}
}
