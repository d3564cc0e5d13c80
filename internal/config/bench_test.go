package config

import (
	"os"
	"testing"
)

func loadFull(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile(examplesDir + "/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkParse measures a full control-plane parse of the largest
// example (YAML and the same config as canonical JSON).
func BenchmarkParse(b *testing.B) {
	data := loadFull(b)
	c, err := Parse(data, FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	canon := c.Canonical()
	for _, bc := range []struct {
		name string
		data []byte
		f    Format
	}{{"yaml", data, FormatYAML}, {"json", canon, FormatJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := Parse(bc.data, bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	c, err := Parse(loadFull(b), FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVersion(b *testing.B) {
	c, err := Parse(loadFull(b), FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Version()
	}
}
