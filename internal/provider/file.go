// Package provider holds the config sources that feed the apply pipeline.
// A provider only delivers bytes and says where they came from; parsing,
// validation and activation are control's.
package provider

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
)

// File re-applies a config file when it changes on disk or when Reload is
// called (SIGHUP). An invalid file is logged and the running snapshot keeps
// serving. Create it with NewFile and run it with Run; Reload is safe to
// call from any goroutine.
type File struct {
	path    string
	applier *control.Applier
	logger  *slog.Logger
	reload  chan struct{}
	// Debounce collapses bursts of file events (editors write, rename and
	// chmod in quick succession) into one apply. Zero means 100ms.
	Debounce time.Duration
}

// NewFile returns a File provider for path. It starts nothing.
func NewFile(path string, a *control.Applier, logger *slog.Logger) *File {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &File{path: path, applier: a, logger: logger, reload: make(chan struct{}, 1)}
}

// Load reads and applies the file once, returning the apply's error.
func (f *File) Load(src control.Source) (control.Result, error) {
	format, err := config.FormatFromPath(f.path)
	if err != nil {
		return control.Result{}, err
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return control.Result{}, err
	}
	return f.applier.ApplyBytes(data, format, src)
}

// Reload asks Run to re-read the file now. It never blocks.
func (f *File) Reload() {
	select {
	case f.reload <- struct{}{}:
	default:
	}
}

// Run watches the file until ctx is done. It watches the directory, not the
// file, because editors and config-management tools replace files by
// rename, which a watch on the old inode would miss.
func (f *File) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(f.path)); err != nil {
		return err
	}
	debounce := f.Debounce
	if debounce <= 0 {
		debounce = 100 * time.Millisecond
	}
	base := filepath.Clean(f.path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if filepath.Clean(ev.Name) == base && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			f.logger.Warn("config file watch error", "error", err)
		case <-timer.C:
			f.apply(control.SourceFile)
		case <-f.reload:
			f.apply(control.SourceFile)
		}
	}
}

func (f *File) apply(src control.Source) {
	res, err := f.Load(src)
	if err != nil {
		// The applier already logged the rejection with its details.
		f.logger.Warn("config file not applied; keeping the running config", "path", f.path)
		return
	}
	if res.Unchanged {
		f.logger.Debug("config file unchanged", "version", res.Version)
	}
}
