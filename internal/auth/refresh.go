package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// maxJWKSBytes bounds a fetched key set; real ones are a few KB.
const maxJWKSBytes = 1 << 20

// errRateLimited says a refresh was skipped because one ran recently.
var errRateLimited = errors.New("jwks refresh rate-limited")

// fetchCall is one fetch shared by every caller that asks while it runs.
type fetchCall struct {
	done chan struct{} // closed when err is set
	err  error
}

// Run refetches the key set every RefreshInterval (JWKSURL) or re-reads
// the file (JWKSFile) until ctx is done, then returns nil. It fetches once
// at the start, and after a failed fetch it retries sooner, every 10
// seconds, keeping the previous keys meanwhile. Failures go to
// Config.OnError.
//
// Run is optional: without it, keys are fetched on first use and again
// only when a token names an unknown kid, so a key removed from the set
// (revoked) stays trusted until the Verifier is replaced. The caller owns
// the goroutine that calls Run; call it at most once per Verifier and
// cancel ctx when the Verifier is retired.
func (v *Verifier) Run(ctx context.Context) error {
	for {
		wait := v.interval
		if err := v.refresh(ctx, true); err != nil && ctx.Err() == nil {
			wait = min(wait, v.gap)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// refresh loads the key set and swaps it in, joining a fetch already in
// flight. Unless force is set, it returns errRateLimited instead of
// fetching when the previous fetch started less than minRefreshGap ago.
//
// The fetch runs on the caller's goroutine but not under its cancellation:
// a request whose client hangs up must not abort a fetch that other
// requests wait for (and then burn the rate limit). It is bounded by
// DefaultFetchTimeout or the HTTP client's own timeout instead; a waiter
// whose ctx ends stops waiting.
func (v *Verifier) refresh(ctx context.Context, force bool) error {
	v.mu.Lock()
	if c := v.inflight; c != nil {
		v.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := v.now()
	if !force && !v.lastFetch.IsZero() && now.Sub(v.lastFetch) < v.gap {
		v.mu.Unlock()
		return errRateLimited
	}
	c := &fetchCall{done: make(chan struct{})}
	v.inflight, v.lastFetch = c, now
	v.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
	c.err = v.reload(fctx)
	cancel()

	v.mu.Lock()
	v.inflight = nil
	v.mu.Unlock()
	close(c.done)
	return c.err
}

// reload fetches, parses and installs the key set. On any failure the
// current keys stay.
func (v *Verifier) reload(ctx context.Context) error {
	data, err := v.load(ctx)
	var (
		ks       *keySet
		problems []error
	)
	if err == nil {
		ks, problems, err = parseKeySet(data, v.keys.Load())
	}
	for _, p := range problems {
		v.report(p)
	}
	if err != nil {
		err = fmt.Errorf("auth: refresh jwks: %w", err)
		v.report(err)
		return err
	}
	v.keys.Store(ks)
	return nil
}

func (v *Verifier) report(err error) {
	if v.onError != nil {
		v.onError(err)
	}
}

// httpSource fetches a key set over HTTP.
func httpSource(client *http.Client, url string) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		if len(data) > maxJWKSBytes {
			return nil, fmt.Errorf("GET %s: key set over %d bytes", url, maxJWKSBytes)
		}
		return data, nil
	}
}

// fileSource reads a key set from a file.
func fileSource(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
		if err != nil {
			return nil, err
		}
		if len(data) > maxJWKSBytes {
			return nil, fmt.Errorf("%s: key set over %d bytes", path, maxJWKSBytes)
		}
		return data, nil
	}
}
