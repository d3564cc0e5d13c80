package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/admin"
	"github.com/keelproxy/keel/internal/audit"
	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/provider"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/proxyproto"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/server/h3"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// accessLogQueue is how many access-log records may wait for the writer
// before new ones are dropped (and counted). At 100k req/s it absorbs a
// 160 ms stall of stdout.
const accessLogQueue = 16384

// readyFunc is told the bound addresses once every listener is up (tests
// and demo use it; nil otherwise).
type readyFunc func(listenerAddrs)

// listenerAddrs are the bound addresses; "" for a listener that is off.
type listenerAddrs struct{ data, tls, h3, admin string }

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

	// Every data listener binds before the start-up config is applied,
	// so a port conflict fails the start cleanly (closers undoes the
	// binding on error), and an ACME manager that the config starts finds
	// the TLS port taken by the listener that answers its challenges.
	var closers []io.Closer
	fail := func(err error) error {
		for _, c := range closers {
			c.Close()
		}
		return err
	}
	dataLn, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	closers = append(closers, dataLn)
	var tlsLn net.Listener
	if o.tlsAddr != "" {
		if tlsLn, err = net.Listen("tcp", o.tlsAddr); err != nil {
			return fail(fmt.Errorf("-tls-addr: %w", err))
		}
		closers = append(closers, tlsLn)
	}
	var h3Conn net.PacketConn
	altSvc := ""
	if o.h3Addr != "" {
		if h3Conn, err = net.ListenPacket("udp", o.h3Addr); err != nil {
			return fail(fmt.Errorf("-h3-addr: %w", err))
		}
		closers = append(closers, h3Conn)
		altSvc = h3.AltSvc(h3Conn.LocalAddr().(*net.UDPAddr).Port)
	}
	if tlsLn != nil {
		// ACME validates tls-alpn-01 on the TLS listener's port (443 in
		// production); managers log through the proxy's logger.
		applier.Runtime().SetACME(tlsLn.Addr().(*net.TCPAddr).Port, logger)
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
			return fail(fmt.Errorf("config: %w", err))
		}
	case o.configFile != "":
		file = provider.NewFile(o.configFile, applier, logger)
		if _, err := file.Load(control.SourceStartup); err != nil {
			return fail(fmt.Errorf("config %s: %w", o.configFile, err))
		}
	default:
		logger.Info("no config: serving the empty snapshot (every request 404 no_route)")
	}
	if err := applier.SetTLSListener(o.tlsAddr != "" || o.h3Addr != ""); err != nil {
		return fail(fmt.Errorf("-tls-addr: %w", err))
	}
	srvCfg := serverSettings(applier.Active())

	// Certificates are chosen per handshake from the current snapshot.
	tlsCfg := certs.ListenerConfig(func() *certs.Store { return holder.Load().TLS })

	handler := proxy.NewHandler(holder, proxy.Options{AccessLog: accessLog, Metrics: metrics, Logger: logger, Tracing: tracer,
		H2Limits: proxy.Limits{MaxURLBytes: int(srvCfg.MaxURLBytes.Bytes()), MaxHeaderCount: srvCfg.MaxHeaderCount},
		AltSvc:   altSvc})
	// PROXY protocol is a per-snapshot setting: each new connection asks
	// the current one. The header is read under the server's
	// read-header deadline, which h1 sets before PrepareConn.
	prepare := func(c net.Conn) (net.Conn, error) {
		t := holder.Load().ProxyProtocol
		if t == nil {
			return c, nil
		}
		return proxyproto.Accept(c, *t, 0)
	}
	data, err := newDataServer(handler, srvCfg, nil, prepare, logger)
	if err != nil {
		return fail(err)
	}
	dataServers := []*h1.Server{data}
	var tlsSrv *h1.Server
	if tlsLn != nil {
		if tlsSrv, err = newDataServer(handler, srvCfg, tlsCfg, prepare, logger); err != nil {
			return fail(err)
		}
		dataServers = append(dataServers, tlsSrv)
	}
	var h3Srv *h3.Server
	if h3Conn != nil {
		h3Srv = &h3.Server{Handler: handler, TLSConfig: tlsCfg, MaxHeaderBytes: int(srvCfg.MaxHeaderBytes.Bytes()),
			IdleTimeout: srvCfg.IdleTimeout.Std(), Logger: logger}
	}

	var draining atomic.Bool
	var adminLn, metricsLn net.Listener
	var adminSrv, metricsSrv *http.Server
	if o.enableAdmin {
		if adminLn, err = net.Listen("tcp", o.adminAddr); err != nil {
			return fail(err)
		}
		closers = append(closers, adminLn)
		if adminTLS != nil {
			adminLn = tls.NewListener(adminLn, adminTLS)
		}
		adminSrv = newAdminServer(admin.New(admin.Options{Snapshots: holder, Metrics: metrics,
			Draining: &draining, ServeMetrics: o.metricsAddr == "", Applier: applier, Audit: auditLog,
			Token: o.adminToken, Logger: logger}))
	}
	if o.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", o.metricsAddr); err != nil {
			return fail(err)
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
	serveErr := make(chan error, 5)
	goRun(func() { serveErr <- ignoreClosed(data.Serve(dataLn)) })
	if tlsSrv != nil {
		goRun(func() { serveErr <- ignoreClosed(tlsSrv.Serve(tlsLn)) })
	}
	if h3Srv != nil {
		goRun(func() { serveErr <- ignoreClosed(h3Srv.Serve(h3Conn)) })
	}
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
	addrs := listenerAddrs{data: dataLn.Addr().String(), admin: adminAddr}
	if tlsLn != nil {
		addrs.tls = tlsLn.Addr().String()
	}
	if h3Conn != nil {
		addrs.h3 = h3Conn.LocalAddr().String()
	}
	logger.Info("proxy started", "http_addr", addrs.data, "tls_addr", addrs.tls, "h3_addr", addrs.h3,
		"admin_addr", adminAddr, "version", holder.Load().Version)
	if onReady != nil {
		onReady(addrs)
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
	shutdownData(dataServers, h3Srv, sd.gracePeriod, logger)
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

// shutdownData stops the data-plane servers together: keep-alives off,
// then up to grace for in-flight requests (SPEC section 11), then
// whatever is left is closed. h3 may be nil.
func shutdownData(servers []*h1.Server, h3s *h3.Server, grace time.Duration, logger *slog.Logger) {
	type shutdowner interface {
		Shutdown(context.Context) error
		Close() error
	}
	all := make([]shutdowner, 0, len(servers)+1)
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false)
		all = append(all, s)
	}
	if h3s != nil {
		all = append(all, h3s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				logger.Warn("grace period over; closing remaining connections", "error", err)
				s.Close()
			}
		}()
	}
	wg.Wait()
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
		pool, err := certs.LoadCAs(f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("ADMIN_CLIENT_CA_FILE: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
