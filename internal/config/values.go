package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a non-negative period, written in a document as a Go duration
// string ("50ms", "3s", "5m", "1h30m") or as 0 / "0" / "" for zero. What zero
// means (a default, or "none") is documented on each field. It marshals to
// time.Duration's String form ("1m0s"), so Canonical is the same however the
// document spelled the value.
type Duration time.Duration

// ParseDuration parses a config duration. It accepts Go duration strings,
// "0" and "" (both zero), surrounding spaces, and rejects negative values
// and anything without a unit.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit such as 50ms, 3s or 5m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(d), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the canonical form, time.Duration's String ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as its canonical string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string, or the number 0.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		if string(b) == "0" {
			*d = 0
			return nil
		}
		return fmt.Errorf("expected a duration string such as \"3s\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as its canonical string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string, or the number 0.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration string such as \"3s\", got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!str":
		v, err := ParseDuration(n.Value)
		if err != nil {
			return err
		}
		*d = v
		return nil
	case "!!int", "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == 0 {
			*d = 0
			return nil
		}
		return fmt.Errorf("duration %s needs a unit, such as \"%ss\" or \"%sms\"", n.Value, n.Value, n.Value)
	}
	return fmt.Errorf("expected a duration string such as \"3s\", got %s", describe(n))
}

// Size is a byte count, written in a document as an integer (bytes) or a
// string with a unit in powers of 1024: "512B", "64KB", "1MB", "10MB",
// "1GB", "2TB"; units are case-insensitive and "KiB"/"MiB"/"GiB"/"TiB" and
// the bare "K"/"M"/"G"/"T" mean the same. What zero means is documented on
// each field. It marshals to a plain integer so Canonical is the same
// however the document spelled the value.
type Size int64

// sizeUnits maps a lower-case unit suffix to its multiplier.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// ParseSize parses a size string such as "512KB", "10 MB" or "1048576".
// Only whole numbers are accepted; negative values and overflow are errors.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes or a number with a unit such as 512KB, 1MB or 1GB", s)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB, MB, GB or TB)", s, strings.TrimSpace(t[i:]))
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * mult), nil
}

// Bytes returns s as a byte count.
func (s Size) Bytes() int64 { return int64(s) }

// String returns s in the largest unit that divides it exactly ("64KB",
// "1MB", "1000B"), for messages and docs; documents and Canonical use the
// integer form.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalJSON reads an integer byte count or a size string.
func (s *Size) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		v, err := ParseSize(str)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("expected a non-negative whole number of bytes or a size string such as \"1MB\", got %s", b)
	}
	*s = Size(n)
	return nil
}

// MarshalYAML writes s as an integer byte count.
func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

// UnmarshalYAML reads an integer byte count or a size string.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"1MB\" or a number of bytes, got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!str":
		v, err := ParseSize(n.Value)
		if err != nil {
			return err
		}
		*s = v
		return nil
	case "!!int":
		v, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("invalid size %s: want a non-negative whole number of bytes", n.Value)
		}
		*s = Size(v)
		return nil
	}
	return fmt.Errorf("expected a size such as \"1MB\" or a number of bytes, got %s", describe(n))
}

// Scalar is a string that a document may also write as a number: retry_on
// entries (502 or "502"), expected_status (200 or "200-399"),
// tls.min_version (1.2 or "1.2"), rollout thresholds. It keeps the text as
// written and always marshals as a JSON string, so 502 and "502" have the
// same Canonical form.
type Scalar string

// errScalar is returned for a list or mapping where a Scalar belongs.
var errScalar = errors.New("expected a string or a number")

// UnmarshalJSON reads a JSON string or number.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = Scalar(str)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return errScalar
	}
	*s = Scalar(num.String())
	return nil
}

// UnmarshalYAML reads a YAML string or number.
func (s *Scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w, got %s", errScalar, describe(n))
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		*s = Scalar(n.Value)
		return nil
	}
	return fmt.Errorf("%w, got %s", errScalar, describe(n))
}

// Interface guards: the decoder relies on these to route values through
// the parse functions above.
var (
	_ yaml.Unmarshaler = (*Duration)(nil)
	_ yaml.Unmarshaler = (*Size)(nil)
	_ yaml.Unmarshaler = (*Scalar)(nil)
	_ json.Marshaler   = Duration(0)
	_ json.Unmarshaler = (*Size)(nil)
	_ json.Unmarshaler = (*Scalar)(nil)
)
