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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/provider"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

// serverSettings returns the listener settings of cfg, or the defaults when
// there is no config. Listener limits are read when the listener starts.
func serverSettings(cfg *config.Config) config.Server {
	return orDefaults(cfg).Server
}

// orDefaults returns cfg, or the all-defaults config when the proxy runs
// without one.
func orDefaults(cfg *config.Config) *config.Config {
	if cfg == nil {
		cfg = new(config.Config)
		cfg.ApplyDefaults()
	}
	return cfg
}

type shutdown struct{ drainDelay, gracePeriod time.Duration }

// shutdownSettings returns the active config's drain delay and grace
// period (SPEC section 11), or the defaults.
func shutdownSettings(cfg *config.Config) shutdown {
	cfg = orDefaults(cfg)
	sd := shutdown{gracePeriod: cfg.Shutdown.GracePeriod.Std()}
	if cfg.Shutdown.DrainDelay != nil {
		sd.drainDelay = cfg.Shutdown.DrainDelay.Std()
	}
	return sd
}

// newDataServer builds a data-plane server: our strict, lean HTTP/1.1
// server, handing HTTP/2 connections to the x/net/http2 server (h2c on the
// plaintext listener when server.h2c is on; "h2" by ALPN when tlsCfg makes
// it a TLS listener).
func newDataServer(h http.Handler, s config.Server, tlsCfg *tls.Config, prepare func(net.Conn) (net.Conn, error),
	logger *slog.Logger) (*h1.Server, error) {
	srv := &h1.Server{
		Handler:           h,
		MaxHeaderBytes:    int(s.MaxHeaderBytes.Bytes()),
		MaxHeaderCount:    s.MaxHeaderCount,
		MaxURLBytes:       int(s.MaxURLBytes.Bytes()),
		ReadHeaderTimeout: s.ReadHeaderTimeout.Std(),
		IdleTimeout:       s.IdleTimeout.Std(),
		SlowClientTimeout: s.SlowClientTimeout.Std(),
		ErrorLog:          logger,
		TLSConfig:         tlsCfg,
		PrepareConn:       prepare,
	}
	if s.H2C || tlsCfg != nil {
		newH2Engine(h, s, logger).attach(srv, s.H2C && tlsCfg == nil)
	}
	return srv, nil
}

// reloadOnSIGHUP re-reads the config file on SIGHUP until ctx is done.
func reloadOnSIGHUP(ctx context.Context, f *provider.File, logger *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			logger.Info("SIGHUP: reloading config")
			f.Reload()
		}
	}
}

// validateFile implements -validate: parse, validate and compile (against
// throwaway state) the file, print every error with its path, exit 0 or 1.
func validateFile(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		holder := new(snapshot.Holder)
		a := control.NewApplier(holder, upstream.NewState(nil), obs.NewMetrics(), nil)
		err = a.Validate(cfg)
	}
	if err != nil {
		var fe config.Errors
		if errors.As(err, &fe) {
			for _, e := range fe {
				fmt.Fprintln(stderr, e.Error())
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		fmt.Fprintf(stderr, "%s: invalid\n", path)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid (version %s)\n", path, cfg.Version())
	return 0
}
