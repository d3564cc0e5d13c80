package provider

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

const v1 = "routes: [{id: a, path_prefix: /a, pool: p}]\npools: [{id: p, endpoints: [{address: \"127.0.0.1:1\"}]}]\n"
const v2 = "routes: [{id: b, path_prefix: /b, pool: p}]\npools: [{id: p, endpoints: [{address: \"127.0.0.1:1\"}]}]\n"

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFileWatchAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	var h snapshot.Holder
	st := upstream.NewState(nil)
	defer st.Close()
	a := control.NewApplier(&h, st, nil, nil)
	f := NewFile(path, a, nil)
	f.Debounce = 20 * time.Millisecond
	if _, err := f.Load(control.SourceStartup); err != nil {
		t.Fatal(err)
	}
	first := h.Load().Version

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(50 * time.Millisecond) // let the watch start

	// An invalid edit is ignored: the running config stays.
	if err := os.WriteFile(path, []byte("routes: [{id: a, pool: nope}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := h.Load().Version; got != first {
		t.Fatalf("invalid file replaced the config: %s -> %s", first, got)
	}

	// Replace by rename, as editors and config management do.
	tmp := filepath.Join(dir, "config.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the renamed file to apply", func() bool { return h.Load().Version != first })
	second := h.Load().Version

	// Reload with no change is a no-op.
	f.Reload()
	time.Sleep(100 * time.Millisecond)
	if got := h.Load().Version; got != second {
		t.Fatalf("reload of an unchanged file changed the version")
	}

	// An in-place write applies too, and so does an explicit Reload after
	// the watcher has seen it.
	if err := os.WriteFile(path, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rewritten file to apply", func() bool { return h.Load().Version == first })
}
