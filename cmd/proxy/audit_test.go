package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/audit"
)

// auditFile writes an audit file of n records through audit.Log, the way
// the server writes it, and returns its path.
func auditFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(audit.Record{Actor: "file", Action: "apply", Result: "accepted", Detail: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunAudit(t *testing.T) {
	intact := auditFile(t, 3)
	one := auditFile(t, 1)
	empty := auditFile(t, 0)
	tampered := auditFile(t, 3)
	data, err := os.ReadFile(tampered)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], `"result":"accepted"`, `"result":"rejected"`, 1)
	if err := os.WriteFile(tampered, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope.log")

	tests := []struct {
		desc       string
		args       []string
		wantCode   int
		wantStdout string // exact
		wantStderr string // substring; "" means stderr must be empty
	}{
		{
			desc:       "intact",
			args:       []string{"verify", intact},
			wantCode:   0,
			wantStdout: intact + ": 3 records, chain intact\n",
		},
		{
			desc:       "one record",
			args:       []string{"verify", one},
			wantCode:   0,
			wantStdout: one + ": 1 record, chain intact\n",
		},
		{
			desc:       "empty file",
			args:       []string{"verify", empty},
			wantCode:   0,
			wantStdout: empty + ": 0 records, chain intact\n",
		},
		{
			desc:     "tampered",
			args:     []string{"verify", tampered},
			wantCode: 1,
			wantStdout: tampered + ": broken at record 2 (line 2): hash mismatch: contents were modified\n" +
				tampered + ": 1 record before it is intact\n",
		},
		{desc: "missing file", args: []string{"verify", missing}, wantCode: 1, wantStderr: "no such file"},
		{desc: "directory", args: []string{"verify", t.TempDir()}, wantCode: 1, wantStderr: "is a directory"},
		{desc: "no subcommand", args: nil, wantCode: 2, wantStderr: "missing subcommand"},
		{desc: "unknown subcommand", args: []string{"check", intact}, wantCode: 2, wantStderr: `unknown subcommand "check"`},
		{desc: "no file", args: []string{"verify"}, wantCode: 2, wantStderr: "want exactly one FILE"},
		{desc: "two files", args: []string{"verify", intact, intact}, wantCode: 2, wantStderr: "want exactly one FILE"},
		{desc: "unknown flag", args: []string{"verify", "-x", intact}, wantCode: 2, wantStderr: "flag provided but not defined"},
		{desc: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "proxy audit verify FILE"},
		{desc: "verify help", args: []string{"verify", "-h"}, wantCode: 0, wantStderr: "proxy audit verify FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := runAudit(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("runAudit(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("runAudit(%q) stdout = %q, want %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("runAudit(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}
