package config

import (
	"os"
	"path/filepath"
	"testing"
)

// examplesDir holds the shipped example configs; every one must load and
// validate, so the docs never show a config the proxy would refuse.
const examplesDir = "../../configs/examples"

func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatalf("ReadDir(%q) = %v", examplesDir, err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if _, err := FormatFromPath(e.Name()); err != nil {
			continue
		}
		n++
		path := filepath.Join(examplesDir, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			c, err := Load(path)
			if err != nil {
				t.Fatalf("Load(%q) = %v", path, err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Load(%q).Validate() = %v, want nil", path, err)
			}
		})
	}
	if n < 2 {
		t.Errorf("found %d example configs in %s, want at least basic.yaml and full.yaml", n, examplesDir)
	}
}
