package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Errors of GetCertificate, wrapped with the server name where there is
// one. A TLS listener turns them into a failed handshake; they are
// exported for its logs and for tests.
var (
	// ErrNotRunning is returned before Run has started, and after it
	// has returned.
	ErrNotRunning = errors.New("acme: manager not running")
	// ErrNotManaged is returned for a server name outside Domains.
	ErrNotManaged = errors.New("acme: server name not managed")
	// ErrPending is returned while the first certificate of a name is
	// still being obtained.
	ErrPending = errors.New("acme: certificate not obtained yet")
)

var errRunTwice = errors.New("acme: Run called twice")

const (
	// onDemandWait bounds how long an on-demand handshake waits for the
	// issuance it started: a TLS handshake context often has no deadline
	// (net/http puts deadlines on the conn, not the context), and the
	// client has given up long before certmagic's retries end. The
	// issuance goes on, and the client's next attempt finds the result.
	onDemandWait = 15 * time.Second

	// firstPause and maxPause space out whole management attempts, on
	// top of certmagic's own retries within one attempt (which give up
	// after 30 days, or fail at once on a storage error).
	firstPause = time.Minute
	maxPause   = time.Hour
)

// active is one Run: certmagic's config and cache, and the names being
// managed.
type active struct {
	cfg   *certmagic.Config
	cache *certmagic.Cache
	iss   *certmagic.ACMEIssuer
	log   *slog.Logger

	start   chan string   // on-demand names for Run to manage; unbuffered
	stopped chan struct{} // closed when Run stops serving

	mu    sync.Mutex
	ready map[string]chan struct{} // on-demand name → closed once its certificate is cached
}

// Run loads the stored certificates of the Domains, obtains the missing
// ones (at once, or at the first handshake with OnDemand) and keeps them
// renewed until ctx is done. Renewal is certmagic's cache maintenance:
// every RenewCheckInterval (10 minutes by default) it renews certificates
// in their last third of life (or in the window the CA suggests through
// ACME Renewal Information), with backoff after failures (the first
// retry a minute later); handshakes keep getting the old certificate
// meanwhile, and the new one replaces it in storage and in the cache.
//
// Run returns nil after ctx is done and what it started has stopped; it
// returns an error at once if the storage directory cannot be created or
// Run was called before. Call it once, from a goroutine the caller owns.
//
// A few things certmagic starts are not Run's to wait for: its
// FileStorage refreshes a held lock file from a goroutine that notices
// the release only within 5 seconds; a renewal in flight runs on
// certmagic's worker goroutines and ends soon after Run cancels it; its
// HTTP client keeps idle keep-alive connections to the CA until the CA
// closes them; and it keeps one rate-limiter goroutine per CA and
// account for the life of the process.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errRunTwice
	}
	if err := os.MkdirAll(m.storage, 0o700); err != nil {
		return fmt.Errorf("acme: storage: %w", err)
	}
	a := m.newActive() // starts certmagic's maintenance goroutine
	var wg sync.WaitGroup
	if !m.onDemand {
		for _, name := range m.domains {
			wg.Go(func() { a.manage(ctx, name) })
		}
	}
	m.cur.Store(a)
	for {
		select {
		case name := <-a.start:
			wg.Go(func() { a.manage(ctx, name) })
		case <-ctx.Done():
			m.cur.Store(nil)
			close(a.stopped)
			wg.Wait()
			a.cache.Stop()
			return nil
		}
	}
}

// newActive builds certmagic's cache and config: the Manager's own cache,
// storage, issuer and logger, never certmagic.Default or its default
// cache, so that Managers do not share state through certmagic's package
// variables beyond what certmagic itself keeps there.
func (m *Manager) newActive() *active {
	zl := zap.New(newSlogCore(m.log.Handler()))
	var cfg atomic.Pointer[certmagic.Config] // read by the maintenance goroutine
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg.Load(), nil },
		// Zero is certmagic's default; OCSPCheckInterval stays at its
		// default.
		RenewCheckInterval: m.renewTick,
		Logger:             zl,
	})
	c := certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: m.storage},
		Logger:  zl,
		// Non-nil, so that New does not build a default Let's Encrypt
		// issuer; the real one needs c and is set below.
		Issuers: []certmagic.Issuer{},
	})
	iss := certmagic.NewACMEIssuer(c, certmagic.ACMEIssuer{
		CA:    m.directory,
		Email: m.email,
		// Configuring a CA is agreeing to its terms; without this
		// certmagic would ask on stdin.
		Agreed:               true,
		DisableHTTPChallenge: m.httpPort == 0,
		AltHTTPPort:          m.httpPort,
		AltTLSALPNPort:       m.tlsPort,
		TrustedRoots:         m.roots,
		Logger:               zl,
	})
	c.Issuers = []certmagic.Issuer{iss}
	cfg.Store(c)
	return &active{
		cfg: c, cache: cache, iss: iss, log: m.log,
		start: make(chan string), stopped: make(chan struct{}),
		ready: make(map[string]chan struct{}),
	}
}

// manage makes the certificate of name available until ctx is done,
// retrying with growing pauses; certmagic renews it from then on.
func (a *active) manage(ctx context.Context, name string) {
	pause := firstPause
	for {
		err := a.load(ctx, name)
		if err == nil {
			a.log.Info("acme: certificate ready", "name", name)
			a.done(name, true)
			return
		}
		if ctx.Err() != nil {
			a.done(name, false)
			return
		}
		a.log.Error("acme: cannot obtain certificate", "name", name, "error", err, "retry_in", pause)
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			a.done(name, false)
			return
		}
		pause = min(2*pause, maxPause)
	}
}

// load puts the certificate of name into the cache: the stored one, or a
// new one from the CA. Certmagic's non-interactive calls are used because
// the interactive ones prompt on stdin when the email is empty.
func (a *active) load(ctx context.Context, name string) error {
	cert, err := a.cfg.CacheManagedCertificate(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		// ObtainCertAsync is synchronous; "async" means certmagic
		// retries with backoff (for up to 30 days) instead of failing
		// on the first error.
		if err := a.cfg.ObtainCertAsync(ctx, name); err != nil {
			return err
		}
		cert, err = a.cfg.CacheManagedCertificate(ctx, name)
	}
	if err != nil {
		return err
	}
	if cert.NeedsRenewal(a.cfg) {
		// The stored certificate aged while the proxy was down: renew
		// now instead of at the first maintenance tick. This queues the
		// renewal on certmagic's workers under ctx and serves the old
		// certificate until the new one is cached.
		return a.cache.RenewManagedCertificates(ctx)
	}
	return nil
}

// done wakes the on-demand handshakes waiting for name. After a success
// the closed channel stays, so later waits return at once; otherwise it
// goes, so that the next handshake starts over.
func (a *active) done(name string, ok bool) {
	a.mu.Lock()
	ch := a.ready[name]
	if !ok {
		delete(a.ready, name)
	}
	a.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// GetCertificate returns the certificate for hello.ServerName, for use as
// (or from) tls.Config.GetCertificate. A ClientHello offering only
// ALPNProto is the CA validating tls-alpn-01 and gets the challenge
// certificate. Before the first certificate of a name is obtained it
// returns ErrPending, except with OnDemand, where the first handshake
// starts the issuance and waits for it, up to 15 seconds. The returned
// certificate is shared: callers must not modify it.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !m.Handles(hello.ServerName) {
		return nil, fmt.Errorf("%w: %q", ErrNotManaged, hello.ServerName)
	}
	a := m.cur.Load()
	if a == nil {
		return nil, ErrNotRunning
	}
	// RFC 8737 §3: the validation handshake offers exactly this
	// protocol; certmagic answers it from the challenge in progress.
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto {
		return a.cfg.GetCertificate(hello)
	}
	name := strings.ToLower(hello.ServerName)
	if len(a.cache.AllMatchingCertificates(name)) == 0 {
		if !m.onDemand {
			return nil, fmt.Errorf("%w: %s", ErrPending, name)
		}
		if err := a.await(hello.Context(), name); err != nil {
			return nil, err
		}
	}
	return a.cfg.GetCertificate(hello)
}

// await starts managing name if nothing does yet, and waits until its
// certificate is cached or management stops.
func (a *active) await(ctx context.Context, name string) error {
	var done <-chan struct{} // a hand-made ClientHelloInfo has no context
	if ctx != nil {
		done = ctx.Done()
	}
	a.mu.Lock()
	ready, ok := a.ready[name]
	if !ok {
		ready = make(chan struct{})
		a.ready[name] = ready
	}
	a.mu.Unlock()
	if !ok {
		select {
		case a.start <- name:
		case <-a.stopped:
			a.done(name, false)
			return ErrNotRunning
		case <-done:
			a.done(name, false)
			return ctx.Err()
		}
	}
	timer := time.NewTimer(onDemandWait)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %s", ErrPending, name)
	case <-a.stopped:
		return ErrNotRunning
	case <-done:
		return ctx.Err()
	}
}

// HTTPChallengeHandler returns a handler that answers the CA's http-01
// requests (GET /.well-known/acme-challenge/<token> for one of the
// Domains) while Run runs and HTTPPort is set, and passes every other
// request to next. Wrap the plaintext listener's handler with it.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := m.cur.Load(); a != nil && m.Handles(hostOnly(r.Host)) && a.iss.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}
