package keel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// layer rules of docs/ARCHITECTURE.md: which internal packages each
// package may import. Imports point down only; the data plane never sees
// config parsing; data-plane parts do not import each other.
var allowedImports = map[string][]string{
	"obs":               {},
	"audit":             {},
	"registry":          {},
	"tracing":           {},
	"auth":              {},
	"overload":          {"resilience"},
	"ratelimit":         {"httpwire"},
	"traffic":           {"resilience"},
	"resilience":        {},
	"ctl":               {},
	"config":            {},
	"router":            {"httpwire"},
	"upstream":          {"certs", "httpwire", "obs", "upstream/h1client"},
	"upstream/h1client": {"httpwire"},
	"httpwire":          {},
	"proxyproto":        {},
	"certs":             {},
	"acme":              {},
	"snapshot":          {"certs", "obs", "proxyproto", "resilience", "router", "upstream"},
	"proxy":             {"certs", "httpwire", "obs", "overload", "ratelimit", "resilience", "router", "snapshot", "tracing", "traffic", "upstream"},
	"server/h1":         {"httpwire", "obs"},
	"server/h2":         {"httpwire"},
	"server/h3":         {},
	"compile":           {"acme", "auth", "certs", "config", "proxyproto", "obs", "overload", "proxy", "ratelimit", "registry", "resilience", "router", "snapshot", "tracing", "traffic", "upstream"},
	"control":           {"acme", "audit", "auth", "certs", "compile", "config", "obs", "overload", "proxy", "ratelimit", "registry", "resilience", "router", "snapshot", "tracing", "traffic", "upstream"},
	"provider":          {"compile", "config", "control", "obs", "proxy", "router", "snapshot", "upstream"},
	"admin":             {"audit", "auth", "compile", "config", "control", "obs", "overload", "proxy", "ratelimit", "registry", "resilience", "router", "snapshot", "traffic", "upstream"},
	"proxytest":         {"*"},
	"testpki":           {},
	"testpebble":        {"testpki"},
}

const modPrefix = "github.com/keelproxy/keel/internal/"

// TestImportLayers fails when a package imports across the layers, so the
// architecture is enforced by CI instead of by review.
func TestImportLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], modPrefix)
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s has no entry in allowedImports: decide its layer", pkg)
			continue
		}
		if len(allowed) == 1 && allowed[0] == "*" {
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, modPrefix) {
				continue
			}
			dep := strings.TrimPrefix(imp, modPrefix)
			ok := false
			for _, a := range allowed {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports %s: not allowed by the layer rules", pkg, dep)
			}
		}
	}
}
