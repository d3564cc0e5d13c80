package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/admin"
	"github.com/keelproxy/keel/internal/audit"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/provider"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// accessLogQueue is how many access-log records may wait for the writer
// before new ones are dropped (and counted). At 100k req/s it absorbs a
// 160 ms stall of stdout.
const accessLogQueue = 16384

// ready is told the bound addresses once every listener is up (tests and
// demo use it; nil otherwise).
type readyFunc func(dataAddr, adminAddr string)

// serve runs the proxy until ctx is cancelled (SIGTERM/SIGINT), then shuts
// down gracefully (SPEC section 11). It returns an error only for start-up
// failures; a clean shutdown returns nil.
func serve(ctx context.Context, o options, stdout, stderr io.Writer, onReady readyFunc) error {
	logger, err := obs.NewLogger(stderr, o.logJSON, o.logLevel)
	if err != nil {
		return err
	}
	if err := checkAdminAddr(o); err != nil {
		return err
	}
	metrics := obs.NewMetrics()
	accessLog := obs.NewAccessLog(stdout, accessLogQueue, metrics.LogDropped)
	state := upstream.NewState(metrics)
	holder := new(snapshot.Holder)
	applier := control.NewApplier(holder, state, metrics, logger)
	// The audit log opens before the first apply so that the start-up
	// config is its first record; it always keeps recent records in
	// memory for the admin API, with or without a file.
	auditLog, err := audit.Open(o.auditFile, 0)
	if err != nil {
		return fmt.Errorf("-audit-file: %w", err)
	}
	defer auditLog.Close()
	applier.SetAuditLog(auditLog)
	// The trace provider exists before the first apply so the start-up
	// snapshot records spans too; it owns the exporter's goroutine, which
	// Shutdown below stops after flushing.
	tracer, err := tracing.New(o.traceEndpoint, tracing.Options{NodeID: o.nodeID,
		SampleRatio: config.DefaultSampleRatio, Logger: logger})
	if err != nil {
		return fmt.Errorf("-trace-endpoint: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tracer.Shutdown(ctx)
	}()
	applier.SetTracing(tracer)
	adminTLS, err := o.adminTLS.config()
	if err != nil {
		return err
	}

	// The initial config must be valid: a proxy that starts on a config it
	// cannot serve would mislead whoever started it.
	var file *provider.File
	switch {
	case o.configBytes != nil:
		f := config.FormatYAML
		if o.configFormat == "json" {
			f = config.FormatJSON
		}
		if _, err := applier.ApplyBytes(o.configBytes, f, control.SourceStartup); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	case o.configFile != "":
		file = provider.NewFile(o.configFile, applier, logger)
		if _, err := file.Load(control.SourceStartup); err != nil {
			return fmt.Errorf("config %s: %w", o.configFile, err)
		}
	default:
		logger.Info("no config: serving the empty snapshot (every request 404 no_route)")
	}
	srvCfg := serverSettings(applier.Active())

	handler := proxy.NewHandler(holder, proxy.Options{AccessLog: accessLog, Metrics: metrics, Logger: logger, Tracing: tracer,
		H2Limits: proxy.Limits{MaxURLBytes: int(srvCfg.MaxURLBytes.Bytes()), MaxHeaderCount: srvCfg.MaxHeaderCount}})
	dataLn, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	data, err := newDataServer(handler, srvCfg, logger)
	if err != nil {
		dataLn.Close()
		return err
	}

	var draining atomic.Bool
	var adminLn, metricsLn net.Listener
	var adminSrv, metricsSrv *http.Server
	if o.enableAdmin {
		if adminLn, err = net.Listen("tcp", o.adminAddr); err != nil {
			dataLn.Close()
			return err
		}
		if adminTLS != nil {
			adminLn = tls.NewListener(adminLn, adminTLS)
		}
		adminSrv = newAdminServer(admin.New(admin.Options{Snapshots: holder, Metrics: metrics,
			Draining: &draining, ServeMetrics: o.metricsAddr == "", Applier: applier, Audit: auditLog,
			Token: o.adminToken, Logger: logger}))
	}
	if o.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", o.metricsAddr); err != nil {
			dataLn.Close()
			if adminLn != nil {
				adminLn.Close()
			}
			return err
		}
		metricsSrv = newAdminServer(admin.MetricsHandler(holder, metrics, http.NotFoundHandler()))
	}

	// Every goroutine below is owned here: bg is cancelled at shutdown and
	// wg waits for all of them before serve returns.
	bg, cancelBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	goRun(func() { accessLog.Run(bg) })
	if file != nil {
		goRun(func() {
			if err := file.Run(bg); err != nil {
				logger.Error("config file watcher stopped", "error", err)
			}
		})
		goRun(func() { reloadOnSIGHUP(bg, file, logger) })
	}
	serveErr := make(chan error, 3)
	goRun(func() { serveErr <- ignoreClosed(data.Serve(dataLn)) })
	if adminSrv != nil {
		goRun(func() { serveErr <- ignoreClosed(adminSrv.Serve(adminLn)) })
	}
	if metricsSrv != nil {
		goRun(func() { serveErr <- ignoreClosed(metricsSrv.Serve(metricsLn)) })
	}
	adminAddr := ""
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
	}
	logger.Info("proxy started", "http_addr", dataLn.Addr().String(), "admin_addr", adminAddr,
		"version", holder.Load().Version)
	if onReady != nil {
		onReady(dataLn.Addr().String(), adminAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		if runErr != nil {
			logger.Error("listener failed", "error", runErr)
		}
	}

	// Graceful shutdown, SPEC section 11: readiness fails at once; after
	// drain_delay the listeners stop accepting; in-flight requests get up to
	// grace_period; then whatever is left is closed.
	sd := shutdownSettings(applier.Active())
	if o.drainDelayOverride != nil {
		sd.drainDelay = *o.drainDelayOverride
	}
	draining.Store(true)
	logger.Info("shutting down", "drain_delay", sd.drainDelay.String(), "grace_period", sd.gracePeriod.String())
	if runErr == nil {
		sleepCtx(context.Background(), sd.drainDelay)
	}
	data.SetKeepAlivesEnabled(false)
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), sd.gracePeriod)
	if err := data.Shutdown(graceCtx); err != nil {
		logger.Warn("grace period over; closing remaining connections", "error", err)
		data.Close()
	}
	cancelGrace()
	applier.Close()
	state.Close()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
	if adminSrv != nil {
		adminSrv.Shutdown(closeCtx)
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(closeCtx)
	}
	cancelClose()
	cancelBG()
	wg.Wait()
	logger.Info("shutdown complete")
	return runErr
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// newAdminServer wraps an admin handler in conservative timeouts: the
// admin API carries small JSON bodies, never streams.
func newAdminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
}

// checkAdminAddr enforces SPEC section 2's admin security: on a loopback
// address the API needs the token when one is set; on any other address
// the proxy refuses to start unless the token is set and admin mTLS is
// configured, or the operator said -admin-insecure. An admin API reachable
// from the network without both hands the proxy to anyone who can reach it.
func checkAdminAddr(o options) error {
	t := o.adminTLS
	if (t.cert == "") != (t.key == "") {
		return errors.New("ADMIN_TLS_CERT_FILE and ADMIN_TLS_KEY_FILE must be set together")
	}
	if t.clientCA != "" && t.cert == "" {
		return errors.New("ADMIN_CLIENT_CA_FILE needs ADMIN_TLS_CERT_FILE and ADMIN_TLS_KEY_FILE")
	}
	if !o.enableAdmin || o.adminInsecure {
		return nil
	}
	host, _, err := net.SplitHostPort(o.adminAddr)
	if err != nil {
		return fmt.Errorf("-admin-addr %q: %w", o.adminAddr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	var missing []string
	if o.adminToken == "" {
		missing = append(missing, "an admin token (-admin-token or ADMIN_TOKEN)")
	}
	if t.clientCA == "" {
		missing = append(missing, "admin mTLS (ADMIN_TLS_CERT_FILE, ADMIN_TLS_KEY_FILE, ADMIN_CLIENT_CA_FILE)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("-admin-addr %q is not a loopback address: that needs %s, or -admin-insecure",
			o.adminAddr, strings.Join(missing, " and "))
	}
	return nil
}

// config builds the admin listener's TLS settings, or nil for plain HTTP.
// With a client CA every connection must present a certificate it signed.
func (f adminTLSFiles) config() (*tls.Config, error) {
	if f.cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("admin TLS certificate: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("ADMIN_CLIENT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ADMIN_CLIENT_CA_FILE %s: no PEM certificates in it", f.clientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
