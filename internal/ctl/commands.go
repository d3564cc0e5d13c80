package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// API paths of SPEC section 8.
const (
	pathValidate = "/api/v2/config/validate"
	pathApply    = "/api/v2/config/apply"
	pathDiff     = "/api/v2/config/diff"
	pathCurrent  = "/api/v2/config/current"
	pathVersions = "/api/v2/config/versions"
	pathRollback = "/api/v2/config/rollback"
	pathPools    = "/api/v2/pools"
	pathMatch    = "/api/v2/routes/match"
	pathReady    = "/ready"
)

// session is one command's connection to the API and its output mode.
type session struct {
	client *Client
	json   bool // -o json: print the server's bodies as received
	stdin  io.Reader
	stdout io.Writer
}

// show prints resp: its body indented with -o json, else through text.
func (s *session) show(resp *Response, text func(w io.Writer)) error {
	if s.json {
		return writeIndented(s.stdout, resp)
	}
	return s.printText(text)
}

// printText renders text output without terminal control characters:
// messages echo config values, and an escape sequence in one must not
// rewrite the operator's terminal. JSON output is left as received
// (json.Indent keeps control characters escaped).
func (s *session) printText(text func(w io.Writer)) error {
	var buf bytes.Buffer
	text(&buf)
	_, err := io.WriteString(s.stdout, strings.Map(printable, buf.String()))
	return err
}

func printable(r rune) rune {
	if r == '\n' || r == '\t' || !unicode.IsControl(r) {
		return r
	}
	return '?'
}

// showJSON prints resp's body with -o json and nothing in text mode, for
// answers whose text form is the one-line reason on stderr.
func (s *session) showJSON(resp *Response) {
	if s.json {
		_ = writeIndented(s.stdout, resp) // a non-JSON error body is summarised on stderr anyway
	}
}

// fail shows an answer with an unexpected status and returns its reason.
func (s *session) fail(resp *Response) error {
	s.showJSON(resp)
	return errors.New(statusError(resp, s.client.HasToken()))
}

func writeIndented(w io.Writer, resp *Response) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(resp.Body), "", "  "); err != nil {
		return fmt.Errorf("admin API answered %d with a body that is not JSON: %q", resp.Status, firstLine(resp.Body))
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// decode unmarshals a body whose shape the status promises.
func decode(resp *Response, dst any) error {
	if err := json.Unmarshal(resp.Body, dst); err != nil {
		return fmt.Errorf("unexpected answer from the admin API (%d): %w", resp.Status, err)
	}
	return nil
}

// configBody is the request body of validate, diff and apply.
type configBody struct {
	Config          json.RawMessage `json:"config"`
	ExpectedVersion string          `json:"expected_version,omitempty"`
}

// formatFlag adds -format to fs.
func formatFlag(fs *flag.FlagSet) *string {
	return fs.String("format", "", "`format` of FILE: yaml or json (default from the extension; yaml for -)")
}

// readConfig reads the FILE argument in the -format given.
func (s *session) readConfig(path, format string) (json.RawMessage, error) {
	f, err := parseFormat(format)
	if err != nil {
		return nil, err
	}
	return ReadConfig(path, f, s.stdin)
}

func setupValidate(fs *flag.FlagSet) action {
	format := formatFlag(fs)
	return func(ctx context.Context, s *session, args []string) error {
		doc, err := s.readConfig(args[0], *format)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(ctx, http.MethodPost, pathValidate, nil, configBody{Config: doc})
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK && resp.Status != http.StatusUnprocessableEntity {
			return s.fail(resp)
		}
		var v validation
		if err := decode(resp, &v); err != nil {
			return err
		}
		if err := s.show(resp, v.print); err != nil {
			return err
		}
		if resp.Status != http.StatusOK || !v.Valid {
			return fmt.Errorf("config is invalid: %s", v.summary())
		}
		return nil
	}
}

func setupDiff(fs *flag.FlagSet) action {
	format := formatFlag(fs)
	return func(ctx context.Context, s *session, args []string) error {
		doc, err := s.readConfig(args[0], *format)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(ctx, http.MethodPost, pathDiff, nil, configBody{Config: doc})
		if err != nil {
			return err
		}
		switch resp.Status {
		case http.StatusOK:
			var d diff
			if err := decode(resp, &d); err != nil {
				return err
			}
			if err := s.show(resp, d.print); err != nil {
				return err
			}
			// The diff is shown either way; the exit status says whether
			// applying it would work, so "diff" can gate a pipeline.
			if d.invalid() {
				return fmt.Errorf("config is invalid: %s; an apply would be rejected", d.summary())
			}
			return nil
		case http.StatusUnprocessableEntity:
			// A config the server cannot parse has no diff; say why like
			// validate does.
			return s.rejected(resp, "diff", "invalid")
		}
		return s.fail(resp)
	}
}

func setupApply(fs *flag.FlagSet) action {
	format := formatFlag(fs)
	expected := fs.String("expected-version", "", "apply only if `version` is still the active one (otherwise 409, nothing applied)")
	return func(ctx context.Context, s *session, args []string) error {
		doc, err := s.readConfig(args[0], *format)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(ctx, http.MethodPost, pathApply, nil, configBody{Config: doc, ExpectedVersion: *expected})
		if err != nil {
			return err
		}
		return s.applied(resp, "apply", "applied version")
	}
}

func setupRollback(fs *flag.FlagSet) action {
	to := fs.String("to", "", "`version` to make active again (default: the previous one)")
	return func(ctx context.Context, s *session, _ []string) error {
		// "version" is always sent: "" is how the API says "previous".
		body := struct {
			Version string `json:"version"`
		}{*to}
		resp, err := s.client.Do(ctx, http.MethodPost, pathRollback, nil, body)
		if err != nil {
			return err
		}
		return s.applied(resp, "rollback", "rolled back to version")
	}
}

// applied renders the answer of apply and rollback, which share it.
func (s *session) applied(resp *Response, what, done string) error {
	switch resp.Status {
	case http.StatusOK:
		var a applyResult
		if err := decode(resp, &a); err != nil {
			return err
		}
		return s.show(resp, func(w io.Writer) { a.print(w, done) })
	case http.StatusUnprocessableEntity:
		return s.rejected(resp, what, "rejected")
	case http.StatusConflict, http.StatusNotFound:
		s.showJSON(resp)
		var e apiError
		_ = json.Unmarshal(resp.Body, &e) // the status alone still says enough
		msg := e.Error
		if msg == "" {
			msg = statusError(resp, s.client.HasToken())
		}
		if e.ActiveVersion != "" && !strings.Contains(msg, e.ActiveVersion) {
			msg += " (active version " + e.ActiveVersion + ")"
		}
		return fmt.Errorf("%s rejected: %s", what, msg)
	}
	return s.fail(resp)
}

// rejected renders a 422: the errors on stdout under head, the count as
// the reason.
func (s *session) rejected(resp *Response, what, head string) error {
	var v validation
	if err := decode(resp, &v); err != nil {
		return err
	}
	if err := s.show(resp, func(w io.Writer) { v.printErrors(w, head) }); err != nil {
		return err
	}
	return fmt.Errorf("%s rejected: %s", what, v.summary())
}

func setupVersions(*flag.FlagSet) action {
	return func(ctx context.Context, s *session, _ []string) error {
		resp, err := s.client.Do(ctx, http.MethodGet, pathVersions, nil, nil)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return s.fail(resp)
		}
		var l versionList
		if err := decode(resp, &l); err != nil {
			return err
		}
		return s.show(resp, l.print)
	}
}

func setupExplain(fs *flag.FlagSet) action {
	host := fs.String("host", "", "request `host` (required)")
	path := fs.String("path", "", "request `path`, query included (required)")
	method := fs.String("method", http.MethodGet, "request `method`")
	var headers headerFlags
	fs.Var(&headers, "H", "request `header` as 'Name: value'; repeatable")
	return func(ctx context.Context, s *session, _ []string) error {
		if *host == "" || *path == "" {
			return &UsageError{"explain needs -host and -path"}
		}
		q := url.Values{"host": {*host}, "path": {*path}, "method": {*method}}
		if len(headers) > 0 {
			q["h"] = headers
		}
		resp, err := s.client.Do(ctx, http.MethodGet, pathMatch, q, nil)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return s.fail(resp)
		}
		var m match
		if err := decode(resp, &m); err != nil {
			return err
		}
		return s.show(resp, m.print)
	}
}

func setupStatus(*flag.FlagSet) action {
	return func(ctx context.Context, s *session, _ []string) error {
		st, err := s.fetchStatus(ctx)
		if err != nil {
			return err
		}
		if s.json {
			return st.writeJSON(s.stdout)
		}
		return s.printText(st.print)
	}
}

// fetchStatus reads readiness, the current config and the pools. /ready
// answering 503 (draining, starting) is a state to show, not a failure.
func (s *session) fetchStatus(ctx context.Context) (*status, error) {
	var st status
	var err error
	if st.raw.Ready, err = s.getJSON(ctx, pathReady, &st.ready, http.StatusOK, http.StatusServiceUnavailable); err != nil {
		return nil, err
	}
	if st.raw.Current, err = s.getJSON(ctx, pathCurrent, &st.current, http.StatusOK); err != nil {
		return nil, err
	}
	if st.raw.Pools, err = s.getJSON(ctx, pathPools, &st.pools, http.StatusOK); err != nil {
		return nil, err
	}
	return &st, nil
}

// getJSON GETs path and decodes the answer into dst when its status is
// one of want; it returns the body as received.
func (s *session) getJSON(ctx context.Context, path string, dst any, want ...int) ([]byte, error) {
	resp, err := s.client.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(want, resp.Status) {
		return nil, s.fail(resp)
	}
	if err := decode(resp, dst); err != nil {
		return nil, err
	}
	return resp.Body, nil
}
