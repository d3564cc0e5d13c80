package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/admin"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/provider"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/snapshot"
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

	handler := proxy.NewHandler(holder, proxy.Options{AccessLog: accessLog, Metrics: metrics, Logger: logger,
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
		adminSrv = newAdminServer(admin.New(admin.Options{Snapshots: holder, Metrics: metrics,
			Draining: &draining, ServeMetrics: o.metricsAddr == ""}))
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

// checkAdminAddr refuses a non-loopback admin listener unless the operator
// said -admin-insecure: this release has no admin mTLS yet, and an
// unauthenticated admin API reachable from the network hands the proxy to
// anyone (SPEC section 2).
func checkAdminAddr(o options) error {
	if !o.enableAdmin || o.adminInsecure {
		return nil
	}
	host, _, err := net.SplitHostPort(o.adminAddr)
	if err != nil {
		return fmt.Errorf("-admin-addr %q: %w", o.adminAddr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-admin-addr %q is not a loopback address: admin mTLS is not supported yet, so this needs -admin-insecure", o.adminAddr)
	}
	return nil
}
