package control

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keelproxy/keel/internal/audit"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/router"
)

// recorder is an AuditLog that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	records []audit.Record
	fail    error
}

func (r *recorder) Append(rec audit.Record) (audit.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return audit.Record{}, r.fail
	}
	r.records = append(r.records, rec)
	return rec, nil
}

func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		out = append(out, rec.Action+"/"+rec.Result)
	}
	return strings.Join(out, " ")
}

func parse(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConditionalApply(t *testing.T) {
	a, h := newApplier(t)
	rec := &recorder{}
	a.SetAuditLog(rec)
	resA, err := a.ApplyWith(parse(t, cfgA), Request{Source: SourceAdmin, Actor: "admin 127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	before := h.Load()
	_, err = a.ApplyWith(parse(t, cfgB), Request{Source: SourceAdmin, ExpectedVersion: "stale"})
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Active != resA.Version || conflict.Expected != "stale" {
		t.Fatalf("stale expected_version: err = %v, want a ConflictError naming %s", err, resA.Version)
	}
	if h.Load() != before {
		t.Fatalf("a conflicting apply replaced the snapshot")
	}
	if _, err := a.ApplyWith(parse(t, cfgB), Request{Source: SourceAdmin, ExpectedVersion: resA.Version}); err != nil {
		t.Fatalf("matching expected_version: %v", err)
	}
	if got, want := rec.summary(), "apply/accepted apply/rejected apply/accepted"; got != want {
		t.Fatalf("audit = %q, want %q", got, want)
	}
	if rec.records[0].Actor != "admin 127.0.0.1" || rec.records[2].Actor != "admin" {
		t.Fatalf("actors = %q, %q; want the given actor, then the source", rec.records[0].Actor, rec.records[2].Actor)
	}
}

func TestRollback(t *testing.T) {
	a, h := newApplier(t)
	rec := &recorder{}
	a.SetAuditLog(rec)
	if _, err := a.Rollback("", Request{}); !errors.As(err, new(*UnknownVersionError)) {
		t.Fatalf("rollback with no history: err = %v, want UnknownVersionError", err)
	}
	resA, _ := a.ApplyWith(parse(t, cfgA), Request{Source: SourceFile})
	resB, _ := a.ApplyWith(parse(t, cfgB), Request{Source: SourceAdmin})
	res, err := a.Rollback("", Request{Actor: "admin x"})
	if err != nil || res.Version != resA.Version || res.PreviousVersion != resB.Version {
		t.Fatalf("rollback to previous = %+v, %v; want %s from %s", res, err, resA.Version, resB.Version)
	}
	if got := match(h, "/b"); got != router.NotFound {
		t.Fatalf("after rolling back to A, /b = %v, want NotFound", got)
	}
	// Rolling back again toggles, like "cd -".
	if res, err := a.Rollback("", Request{}); err != nil || res.Version != resB.Version {
		t.Fatalf("second rollback = %+v, %v; want %s", res, err, resB.Version)
	}
	if res, err := a.Rollback(resA.Version, Request{}); err != nil || res.Version != resA.Version {
		t.Fatalf("rollback by version = %+v, %v", res, err)
	}
	if res, err := a.Rollback(resA.Version, Request{}); err != nil || !res.Unchanged {
		t.Fatalf("rollback to the active version = %+v, %v; want unchanged", res, err)
	}
	var unknown *UnknownVersionError
	if _, err := a.Rollback("ffffffffffffffff", Request{}); !errors.As(err, &unknown) || unknown.Version != "ffffffffffffffff" {
		t.Fatalf("rollback to an unknown version: err = %v", err)
	}
	hist := a.History()
	if len(hist) != 2 || hist[0].Version != resA.Version || !hist[0].Active || hist[1].Active || hist[0].Source != SourceRollback {
		t.Fatalf("history = %+v", hist)
	}
	cur, ok := a.Current()
	if !ok || cur.Version != resA.Version || cur.Config == nil {
		t.Fatalf("Current() = %+v, %v", cur, ok)
	}
	want := "apply/accepted apply/accepted rollback/accepted rollback/accepted rollback/accepted rollback/unchanged rollback/rejected"
	if got := rec.summary(); got != "rollback/rejected "+want {
		t.Fatalf("audit = %q, want %q", got, "rollback/rejected "+want)
	}
}

func TestHistoryKeepsDistinctVersionsBounded(t *testing.T) {
	a, _ := newApplier(t)
	var versions []string
	for i := range historyKeep + 10 {
		res, err := a.ApplyWith(parse(t, fmt.Sprintf("version: v%d\n", i)), Request{Source: SourceAdmin})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, res.Version)
	}
	// Re-activating an old version moves it to the front, once.
	if _, err := a.Rollback(versions[len(versions)-5], Request{}); err != nil {
		t.Fatal(err)
	}
	hist := a.History()
	if len(hist) != historyKeep {
		t.Fatalf("history has %d entries, want %d", len(hist), historyKeep)
	}
	seen := map[string]bool{}
	for _, e := range hist {
		if seen[e.Version] {
			t.Fatalf("version %s twice in the history", e.Version)
		}
		seen[e.Version] = true
	}
	if hist[0].Version != versions[len(versions)-5] || hist[1].Version != versions[len(versions)-1] {
		t.Fatalf("history front = %s, %s", hist[0].Version, hist[1].Version)
	}
}

func TestRejectsAreAudited(t *testing.T) {
	a, h := newApplier(t)
	rec := &recorder{}
	a.SetAuditLog(rec)
	if _, err := a.ApplyBytesWith([]byte("routes: [unclosed"), config.FormatYAML, Request{Source: SourceAdmin}); err == nil {
		t.Fatal("parse error accepted")
	}
	if _, err := a.ApplyBytesWith([]byte("routes: [{id: x, pool: missing}]"), config.FormatYAML, Request{Source: SourceAdmin}); err == nil {
		t.Fatal("invalid config accepted")
	}
	if h.Load().Version != "" {
		t.Fatalf("a rejected config became active")
	}
	if got := rec.summary(); got != "apply/rejected apply/rejected" {
		t.Fatalf("audit = %q", got)
	}
	detail := rec.records[1].Detail.(map[string]any)
	errs, _ := detail["errors"].([]map[string]string)
	if len(errs) == 0 || errs[0]["path"] == "" {
		t.Fatalf("reject detail = %v, want the field errors with paths", detail)
	}
	// A failing audit log does not block applies.
	rec.fail = errors.New("disk full")
	if _, err := a.ApplyWith(parse(t, cfgA), Request{Source: SourceAdmin}); err != nil {
		t.Fatalf("apply with a failing audit log: %v", err)
	}
}
