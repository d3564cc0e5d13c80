package httpwire

import (
	"testing"
	"time"
)

func TestDateCache(t *testing.T) {
	var d DateCache
	now := time.Date(2026, 11, 26, 9, 30, 1, 500, time.FixedZone("X", 3600))
	if v := d.Value(now); v != "Thu, 26 Nov 2026 08:30:01 GMT" {
		t.Fatalf("Value = %q", v)
	}
	if l := string(d.Line(now.Add(400 * time.Millisecond))); l != "Date: Thu, 26 Nov 2026 08:30:01 GMT\r\n" {
		t.Fatalf("Line in the same second = %q", l)
	}
	if v := d.Value(now.Add(time.Second)); v != "Thu, 26 Nov 2026 08:30:02 GMT" {
		t.Fatalf("Value a second later = %q", v)
	}
}
