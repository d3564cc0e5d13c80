package ctl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxResponseBytes bounds how much of an answer the client reads: a
// current config of tens of thousands of routes fits many times over, and
// a misdirected URL (a download, a stream) cannot exhaust memory.
const maxResponseBytes = 64 << 20

// maxRedirects bounds same-host redirects; the admin API itself never
// redirects, so more than a few means a loop in something in front of it.
const maxRedirects = 5

// Config says where the admin API is and how to authenticate to it.
type Config struct {
	// URL is the admin listener's base URL, http:// or https://. A path
	// (for an admin API mounted under a prefix by a gateway) is kept and
	// the API paths are appended to it.
	URL string
	// Token is sent as "Authorization: Bearer <token>". "" sends no
	// Authorization header.
	Token string
	// CACert is a PEM file of the CAs that may sign the admin server's
	// certificate; "" uses the system roots. Needs an https URL.
	CACert string
	// Cert and Key are the PEM client certificate and key for admin mTLS;
	// both or neither. Need an https URL.
	Cert, Key string
}

// Client calls the admin API. Build it with NewClient; safe for
// concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Response is one answer of the admin API. Body holds at most
// maxResponseBytes; the caller owns it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// UsageError reports a Config that can never work (a malformed URL, TLS
// files with a plain-http URL, a certificate without its key): the
// operator has to change the command line, so it exits 2, not 1.
type UsageError struct{ Msg string }

// Error implements error.
func (e *UsageError) Error() string { return e.Msg }

// NewClient checks c and builds a Client. It reads the CA and client
// certificate files now, so a bad file fails before any request is sent.
func NewClient(c Config) (*Client, error) {
	base, err := parseBaseURL(c.URL)
	if err != nil {
		return nil, err
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, &UsageError{"-cert and -key go together"}
	}
	tlsWanted := c.CACert != "" || c.Cert != ""
	if tlsWanted && base.Scheme != "https" {
		return nil, &UsageError{fmt.Sprintf("-cacert, -cert and -key need an https:// admin URL, not %s", base.Redacted())}
	}
	tc, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		// HTTPS_PROXY and NO_PROXY are honoured like by any Go client;
		// loopback addresses never go through a proxy.
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    10 * time.Second,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
		// One process, a handful of requests: no idle connections to keep.
		DisableKeepAlives: true,
	}
	hc := &http.Client{
		Transport:     tr,
		CheckRedirect: sameOriginRedirects,
	}
	return &Client{base: base, token: c.Token, hc: hc}, nil
}

// BaseURL returns the admin URL without any user information, for
// messages.
func (c *Client) BaseURL() string { return c.base.Redacted() }

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &UsageError{fmt.Sprintf("bad -admin-url %q: want http://host:port or https://host:port", raw)}
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// tlsConfig builds the client TLS settings. TLS 1.2 is the floor: older
// versions have known weaknesses and the admin API carries the bearer
// token.
func tlsConfig(c Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("reading -cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-cacert %s: no PEM certificates in it", c.CACert)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("loading -cert/-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// sameOriginRedirects follows a redirect only to the same scheme and
// host: anything else could hand the bearer token, or a config, to a host
// the operator did not name (and an https → http hop would send them in
// clear).
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("refusing redirect to another host: %s", req.URL.Redacted())
	}
	return nil
}

// Do sends one request to the API path (relative to the base URL) with
// the query and, when body is not nil, body encoded as JSON. Any HTTP
// status is a Response, not an error: 422 and 409 are answers the
// commands render. The error is a *TransportError when no answer came.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) (*Response, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &TransportError{URL: c.BaseURL(), Method: method, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, &TransportError{URL: c.BaseURL(), Method: method, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("answer of %s %s is larger than %d MiB", method, path, maxResponseBytes>>20)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// TransportError reports that the admin API gave no (complete) HTTP
// answer: connection refused, DNS, TLS handshake, timeout, interrupt. URL
// is the redacted base URL; the token is never part of it.
type TransportError struct {
	URL    string
	Method string
	Err    error
}

// Error implements error, in one line for stderr.
func (e *TransportError) Error() string {
	return e.describe("in time")
}

// describe words the error; within says how long "in time" was, which
// only the caller knows.
func (e *TransportError) describe(within string) string {
	err := e.Err
	// url.Error repeats method and full URL; the base URL is said once.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	// A POST that got no answer may still have been carried out: the
	// operator must look before retrying an apply or a rollback.
	maybe := ""
	if e.Method == http.MethodPost {
		maybe = "; the change may still have been made: check 'proxy ctl status'"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("admin API at %s did not answer %s%s", e.URL, within, maybe)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("interrupted before the admin API at %s answered%s", e.URL, maybe)
	}
	msg := err.Error()
	if strings.Contains(msg, "HTTP response to HTTPS client") {
		return fmt.Sprintf("TLS with admin API at %s failed: the server speaks plain HTTP (use http://)", e.URL)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) || strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ") {
		return fmt.Sprintf("TLS with admin API at %s failed: %s", e.URL, msg)
	}
	return fmt.Sprintf("cannot reach admin API at %s: %s", e.URL, msg)
}

// Unwrap returns the underlying network, TLS or context error.
func (e *TransportError) Unwrap() error { return e.Err }

// apiError is the admin API's error body, {"error": "message"}, plus the
// fields some errors carry.
type apiError struct {
	Error         string `json:"error"`
	ActiveVersion string `json:"active_version"`
}

// HasToken reports whether requests carry a bearer token.
func (c *Client) HasToken() bool { return c.token != "" }

// statusError describes an answer with an unwanted status in one line
// for stderr: status, then the server's message. hasToken tells a
// missing token from a wrong one in the 401 hint.
func statusError(r *Response, hasToken bool) string {
	var e apiError
	_ = json.Unmarshal(r.Body, &e) // a non-JSON body just has no message
	msg := e.Error
	if msg == "" && !json.Valid(r.Body) {
		msg = strings.TrimSpace(string(firstLine(r.Body)))
	}
	head := fmt.Sprintf("%d %s", r.Status, strings.ToLower(http.StatusText(r.Status)))
	switch r.Status {
	case http.StatusUnauthorized:
		if !hasToken {
			return head + ": no token given: set ADMIN_TOKEN or -token"
		}
		return head + ": check ADMIN_TOKEN or -token"
	case http.StatusTooManyRequests:
		if ra := r.Header.Get("Retry-After"); ra != "" {
			return fmt.Sprintf("%s: too many failed authentication attempts; retry after %ss", head, ra)
		}
	}
	if msg == "" {
		return head
	}
	return head + ": " + msg
}

// firstLine returns the first line of b, at most 200 bytes, so an HTML
// error page from something in front of the admin API stays one line.
func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return b
}

// timeoutMessage is te's message with "in time" replaced by the
// -timeout limit.
func timeoutMessage(te *TransportError, timeout time.Duration) string {
	return te.describe(fmt.Sprintf("within %s (-timeout)", timeout))
}
