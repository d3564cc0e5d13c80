package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// flags holds the command line of SPEC section 2. A flag beats its
// environment variable; flags of features this release does not have are
// accepted by name (so scripts fail clearly, not on "unknown flag") and
// rejected when set.
type flags struct {
	fs *flag.FlagSet

	configFile    string
	httpAddr      string
	tlsAddr       string
	h3Addr        string
	adminAddr     string
	enableAdmin   bool
	metricsAddr   string
	enablePull    bool
	pullURL       string
	pullInterval  int
	etcdEndpoints string
	etcdPrefix    string
	nodeID        string
	publicKeyFile string
	adminToken    string
	logJSON       bool
	logLevel      string
	traceEndpoint string
	adminInsecure bool
	auditFile     string
	validate      bool
}

func newFlags(out io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet("proxy", flag.ContinueOnError)}
	f.fs.SetOutput(out)
	fs := f.fs
	fs.StringVar(&f.configFile, "config-file", "", "YAML (.yaml/.yml) or JSON (.json) config file [env PROXY_CONFIG_FILE]")
	fs.StringVar(&f.httpAddr, "http-addr", ":8080", "data-plane HTTP listener (HTTP/1.1, plus h2c when server.h2c)")
	fs.StringVar(&f.tlsAddr, "tls-addr", "", "data-plane TLS listener, HTTP/1.1 and HTTP/2 by ALPN; empty = off")
	fs.StringVar(&f.h3Addr, "h3-addr", "", "data-plane HTTP/3 listener (QUIC, UDP), same routes and certificates; announced by Alt-Svc on TLS responses; empty = off")
	fs.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9000", "admin listener [env PROXY_ADMIN_ADDRESS]")
	fs.BoolVar(&f.enableAdmin, "enable-admin", true, "serve the admin listener")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "separate metrics listener; empty serves /metrics on the admin listener [env PROXY_METRICS_ADDRESS]")
	fs.BoolVar(&f.enablePull, "enable-pull", false, "pull signed bundles from -pull-url (not supported yet)")
	fs.StringVar(&f.pullURL, "pull-url", "", "base URL for pull mode (not supported yet)")
	fs.IntVar(&f.pullInterval, "pull-interval-ms", 5000, "pull poll interval (not supported yet)")
	fs.StringVar(&f.etcdEndpoints, "etcd-endpoints", "", "etcd endpoints, comma list (not supported yet) [env PROXY_ETCD_ENDPOINTS]")
	fs.StringVar(&f.etcdPrefix, "etcd-prefix", "/proxy", "etcd key prefix")
	fs.StringVar(&f.nodeID, "node-id", "", "this instance's id in a fleet (default hostname) [env PROXY_NODE_ID]")
	fs.StringVar(&f.publicKeyFile, "public-key-file", "", "ed25519 public key for signed bundles (not supported yet)")
	fs.StringVar(&f.adminToken, "admin-token", "", "admin bearer token [env ADMIN_TOKEN]")
	fs.BoolVar(&f.logJSON, "log-json", true, "JSON logs (text when false)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn, error [env PROXY_LOG_LEVEL]")
	fs.StringVar(&f.traceEndpoint, "trace-endpoint", "", "OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318 [env PROXY_TRACE_ENDPOINT]")
	fs.BoolVar(&f.adminInsecure, "admin-insecure", false, "allow a non-loopback admin listener without mTLS")
	fs.StringVar(&f.auditFile, "audit-file", "", "append-only audit log, JSON lines with a hash chain [env PROXY_AUDIT_FILE]")
	fs.BoolVar(&f.validate, "validate", false, "validate the config file, print errors, exit 0/1")
	return f
}

// parse parses args, then fills unset flags from their environment
// variables, then rejects flags of features not built yet.
func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	env := func(name, envName string, dst *string) {
		if !set[name] {
			if v, ok := os.LookupEnv(envName); ok && v != "" {
				*dst = v
			}
		}
	}
	env("config-file", "PROXY_CONFIG_FILE", &f.configFile)
	env("admin-addr", "PROXY_ADMIN_ADDRESS", &f.adminAddr)
	env("metrics-addr", "PROXY_METRICS_ADDRESS", &f.metricsAddr)
	env("etcd-endpoints", "PROXY_ETCD_ENDPOINTS", &f.etcdEndpoints)
	env("node-id", "PROXY_NODE_ID", &f.nodeID)
	env("admin-token", "ADMIN_TOKEN", &f.adminToken)
	env("log-level", "PROXY_LOG_LEVEL", &f.logLevel)
	env("trace-endpoint", "PROXY_TRACE_ENDPOINT", &f.traceEndpoint)
	env("audit-file", "PROXY_AUDIT_FILE", &f.auditFile)

	var unsupported []string
	for name, on := range map[string]bool{
		"enable-pull": f.enablePull,
		"pull-url":    f.pullURL != "", "etcd-endpoints": f.etcdEndpoints != "",
		"public-key-file": f.publicKeyFile != "",
	} {
		if on {
			unsupported = append(unsupported, "-"+name)
		}
	}
	if len(unsupported) > 0 {
		return fmt.Errorf("not supported yet: %s", strings.Join(unsupported, ", "))
	}
	if f.validate && f.configFile == "" {
		return fmt.Errorf("-validate needs -config-file")
	}
	return nil
}

// options turns the flags into the server's options.
func (f *flags) options() options {
	if f.nodeID == "" {
		// SPEC: the node id defaults to the hostname.
		f.nodeID, _ = os.Hostname()
	}
	return options{
		configFile:    f.configFile,
		httpAddr:      f.httpAddr,
		tlsAddr:       f.tlsAddr,
		h3Addr:        f.h3Addr,
		adminAddr:     f.adminAddr,
		enableAdmin:   f.enableAdmin,
		metricsAddr:   f.metricsAddr,
		adminInsecure: f.adminInsecure,
		adminToken:    f.adminToken,
		adminTLS: adminTLSFiles{
			cert:     os.Getenv("ADMIN_TLS_CERT_FILE"),
			key:      os.Getenv("ADMIN_TLS_KEY_FILE"),
			clientCA: os.Getenv("ADMIN_CLIENT_CA_FILE"),
		},
		auditFile:     f.auditFile,
		traceEndpoint: f.traceEndpoint,
		nodeID:        f.nodeID,
		logJSON:       f.logJSON,
		logLevel:      f.logLevel,
	}
}

// adminTLSFiles are the admin listener's TLS files, from the environment
// (SPEC section 2). All empty means plain HTTP.
type adminTLSFiles struct {
	cert, key, clientCA string
}

// options are the server's start-up settings, from flags or from demo.
type options struct {
	configFile    string
	configBytes   []byte // demo: an embedded config instead of a file
	configFormat  string // "yaml" or "json" for configBytes
	httpAddr      string
	tlsAddr       string // "" = no TLS listener
	h3Addr        string // "" = no HTTP/3 listener
	adminAddr     string
	enableAdmin   bool
	metricsAddr   string
	adminInsecure bool
	adminToken    string
	adminTLS      adminTLSFiles
	auditFile     string
	traceEndpoint string
	nodeID        string
	logJSON       bool
	logLevel      string
	// shutdownOverride, when non-zero, replaces the config's drain delay
	// (demo uses none so Ctrl-C is instant).
	drainDelayOverride *time.Duration
}
