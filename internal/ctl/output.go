package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// maxValueWidth is where diff values are cut: a changed pool or route is
// a whole object, and one line per change keeps the diff scannable.
const maxValueWidth = 120

// text is a JSON scalar shown as text whatever its JSON type: the fields
// it is used for (timestamps, statuses, middleware) are read, not
// computed on, and a server sending 200 or "200", a string or a list,
// must not make the CLI fail to show them.
type text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = text(s)
		return nil
	}
	var list []text
	if err := json.Unmarshal(b, &list); err == nil {
		parts := make([]string, len(list))
		for i, e := range list {
			parts[i] = string(e)
		}
		*t = text(strings.Join(parts, ","))
		return nil
	}
	if string(b) == "null" {
		*t = ""
		return nil
	}
	*t = text(b)
	return nil
}

// time is t cut to whole seconds when it is an RFC 3339 timestamp (the
// server's nanoseconds only widen tables), else t as received.
func (t text) time() string {
	ts, err := time.Parse(time.RFC3339Nano, string(t))
	if err != nil {
		return string(t)
	}
	return ts.Truncate(time.Second).Format(time.RFC3339)
}

// validation is the answer of validate (200 and 422) and the 422 of
// apply, diff and rollback.
type validation struct {
	Valid   bool   `json:"valid"`
	Version string `json:"version"`
	Error   string `json:"error"`
	Errors  []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"errors"`
}

// summary is the count of errors, or the single error message when the
// server gave no list.
func (v *validation) summary() string {
	if len(v.Errors) == 0 && v.Error != "" {
		return v.Error
	}
	return plural(len(v.Errors), "error")
}

func (v *validation) print(w io.Writer) {
	if v.Valid {
		fmt.Fprintf(w, "valid: version %s\n", v.Version)
		return
	}
	v.printErrors(w, "invalid")
}

// printErrors prints the head line and one indented line per error; an
// error about the config as a whole has no path.
func (v *validation) printErrors(w io.Writer, head string) {
	fmt.Fprintf(w, "%s: %s\n", head, v.summary())
	for _, e := range v.Errors {
		if e.Path == "" {
			fmt.Fprintf(w, "  %s\n", e.Message)
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", e.Path, e.Message)
	}
}

// applyResult is the 200 answer of apply and rollback.
type applyResult struct {
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	AppliedAt       text   `json:"applied_at"`
	Unchanged       bool   `json:"unchanged"`
}

func (a *applyResult) print(w io.Writer, done string) {
	if a.Unchanged {
		fmt.Fprintf(w, "unchanged: version %s already active\n", a.Version)
		return
	}
	prev := a.PreviousVersion
	if prev == "" {
		prev = "none"
	}
	fmt.Fprintf(w, "%s %s (was %s) at %s\n", done, a.Version, prev, a.AppliedAt.time())
}

// diff is the answer of diff. The server also says whether an apply of
// the config would be accepted; Valid is nil when it does not.
type diff struct {
	validation
	Valid   *bool  `json:"valid"`
	From    string `json:"from"`
	To      string `json:"to"`
	Changes []struct {
		Op     string          `json:"op"`
		Path   string          `json:"path"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	} `json:"changes"`
}

// invalid reports whether the server said an apply would be rejected.
func (d *diff) invalid() bool { return d.Valid != nil && !*d.Valid }

func (d *diff) print(w io.Writer) {
	d.printChanges(w)
	if d.invalid() {
		d.printErrors(w, "invalid")
	}
}

func (d *diff) printChanges(w io.Writer) {
	if len(d.Changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, c := range d.Changes {
		switch c.Op {
		case "add":
			fmt.Fprintf(w, "+ %s: %s\n", c.Path, shortJSON(c.After))
		case "remove":
			fmt.Fprintf(w, "- %s\n", c.Path)
		case "change":
			fmt.Fprintf(w, "~ %s: %s -> %s\n", c.Path, shortJSON(c.Before), shortJSON(c.After))
		default:
			// An op this CLI does not know yet: show everything.
			fmt.Fprintf(w, "? %s %s: %s -> %s\n", c.Op, c.Path, shortJSON(c.Before), shortJSON(c.After))
		}
	}
	fmt.Fprintf(w, "%s (%s → %s)\n", plural(len(d.Changes), "change"), orNone(d.From), orNone(d.To))
}

// shortJSON is a value compacted to one line and cut at maxValueWidth.
func shortJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return truncate(string(raw), maxValueWidth)
	}
	return truncate(buf.String(), maxValueWidth)
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// versionList is the answer of versions.
type versionList struct {
	Versions []struct {
		Version   string `json:"version"`
		AppliedAt text   `json:"applied_at"`
		Source    string `json:"source"`
		Active    bool   `json:"active"`
	} `json:"versions"`
}

func (l *versionList) print(w io.Writer) {
	if len(l.Versions) == 0 {
		fmt.Fprintln(w, "no versions")
		return
	}
	tw := table(w, "VERSION", "APPLIED AT", "SOURCE", "ACTIVE")
	for _, v := range l.Versions {
		active := ""
		if v.Active {
			active = "*"
		}
		tw.row(v.Version, v.AppliedAt.time(), orDash(v.Source), active)
	}
	tw.flush()
}

// match is the answer of routes/match.
type match struct {
	Matched    bool   `json:"matched"`
	Route      string `json:"route"`
	Pool       string `json:"pool"`
	Policy     string `json:"policy"`
	Middleware text   `json:"middleware"`
	Status     text   `json:"status"`
	Error      string `json:"error"`
	Allow      text   `json:"allow"`
	Candidates []struct {
		Route  string `json:"route"`
		Result string `json:"result"`
		Reason string `json:"reason"`
	} `json:"candidates"`
}

func (m *match) print(w io.Writer) {
	if m.Matched {
		parts := []string{"pool " + orNone(m.Pool)}
		if m.Policy != "" {
			parts = append(parts, "policy "+m.Policy)
		}
		if m.Middleware != "" {
			parts = append(parts, "middleware "+string(m.Middleware))
		}
		parts = append(parts, "status "+string(m.Status))
		fmt.Fprintf(w, "route %s (%s)\n", m.Route, strings.Join(parts, ", "))
	} else {
		line := strings.TrimSpace(fmt.Sprintf("no route: %s %s", m.Status, m.category()))
		if m.Allow != "" {
			line += " (allow " + string(m.Allow) + ")"
		}
		fmt.Fprintln(w, line)
	}
	if len(m.Candidates) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := table(w, "ROUTE", "RESULT", "REASON")
	for _, c := range m.Candidates {
		tw.row(c.Route, c.Result, orDash(c.Reason))
	}
	tw.flush()
}

// category names an unmatched answer like the data plane's error body
// does (SPEC section 6), unless the server said it itself.
func (m *match) category() string {
	if m.Error != "" {
		return m.Error
	}
	switch m.Status {
	case "404":
		return "no_route"
	case "405":
		return "method_not_allowed"
	}
	return ""
}

// status is what the status command gathers, parsed and as received.
type status struct {
	ready struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	current struct {
		Version   string `json:"version"`
		Label     string `json:"label"`
		AppliedAt text   `json:"applied_at"`
		Source    string `json:"source"`
		Config    struct {
			Routes []json.RawMessage `json:"routes"`
		} `json:"config"`
	}
	pools struct {
		Pools []struct {
			ID       string `json:"id"`
			Healthy  int    `json:"healthy"`
			Total    int    `json:"total"`
			Balancer string `json:"balancer"`
		} `json:"pools"`
	}
	// raw holds the three bodies for -o json, each as the server sent it.
	raw struct {
		Ready   json.RawMessage `json:"ready"`
		Current json.RawMessage `json:"current"`
		Pools   json.RawMessage `json:"pools"`
	}
}

func (st *status) print(w io.Writer) {
	c := &st.current
	healthy := 0
	for _, p := range st.pools.Pools {
		if p.Total > 0 && p.Healthy == p.Total {
			healthy++
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	version := orNone(c.Version)
	if c.Label != "" {
		version += fmt.Sprintf(" (label %q)", c.Label)
	}
	fmt.Fprintf(tw, "version:\t%s\n", version)
	fmt.Fprintf(tw, "applied at:\t%s\n", orDash(c.AppliedAt.time()))
	fmt.Fprintf(tw, "source:\t%s\n", orDash(c.Source))
	fmt.Fprintf(tw, "ready:\t%s\n", orDash(st.ready.Status))
	fmt.Fprintf(tw, "routes:\t%d\n", len(c.Config.Routes))
	fmt.Fprintf(tw, "pools:\t%d (%d fully healthy)\n", len(st.pools.Pools), healthy)
	tw.Flush()
	if len(st.pools.Pools) == 0 {
		return
	}
	fmt.Fprintln(w)
	pt := table(w, "POOL", "HEALTHY", "BALANCER")
	for _, p := range st.pools.Pools {
		pt.row(p.ID, fmt.Sprintf("%d/%d", p.Healthy, p.Total), orDash(p.Balancer))
	}
	pt.flush()
}

// writeJSON prints the three bodies in one object, indented.
func (st *status) writeJSON(w io.Writer) error {
	b, err := json.MarshalIndent(&st.raw, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding status: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// tableWriter prints aligned columns without trailing blanks (an empty
// last cell would otherwise leave padding behind).
type tableWriter struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func table(w io.Writer, header ...string) *tableWriter {
	t := &tableWriter{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	t.row(header...)
	return t
}

func (t *tableWriter) row(cells ...string) {
	// Tabs in server strings would break the columns.
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(c, "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *tableWriter) flush() {
	t.tw.Flush()
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line == "" {
			continue
		}
		fmt.Fprintln(t.out, strings.TrimRight(line, " \n"))
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
