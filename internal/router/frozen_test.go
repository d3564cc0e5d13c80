package router

import (
	"fmt"
	"strings"
	"testing"
)

func TestFrozenAgreesWithMap(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 100, 1000} {
		m := make(map[string]int, n)
		for i := range n {
			// Keys of every length class strHash distinguishes: empty,
			// 1-3, 4-8, 9 and more, and long.
			switch i % 5 {
			case 0:
				m[strings.Repeat("k", i%4)] = i
			case 1:
				m[fmt.Sprintf("%d", i)] = i
			case 2:
				m[fmt.Sprintf("/p%06d", i)] = i
			case 3:
				m[fmt.Sprintf("svc%d.example.com", i)] = i
			default:
				m[strings.Repeat("x", 60)+fmt.Sprint(i)] = i
			}
		}
		f := freeze(m)
		if f.len() != len(m) {
			t.Fatalf("n=%d: len() = %d, want %d", n, f.len(), len(m))
		}
		for k, v := range m {
			// A copy of the key, so that equality is by content.
			if got := f.get(string([]byte(k))); got != v {
				t.Fatalf("n=%d: get(%q) = %d, want %d", n, k, got, v)
			}
		}
		seen := 0
		f.all(func(k string, v int) {
			seen++
			if m[k] != v {
				t.Fatalf("n=%d: all gave %q=%d, map has %d", n, k, v, m[k])
			}
		})
		if seen != len(m) {
			t.Fatalf("n=%d: all visited %d entries, want %d", n, seen, len(m))
		}
		for i := range 2000 {
			k := fmt.Sprintf("miss-%d", i)
			if _, in := m[k]; !in && f.get(k) != 0 {
				t.Fatalf("n=%d: get(%q) = %d, want a miss", n, k, f.get(k))
			}
		}
	}
}

func TestStrHashSpreadsAndNeverZero(t *testing.T) {
	t.Parallel()
	// Keys that differ in one byte at every position must hash apart,
	// including bytes only the overlapping last word reads.
	for n := 0; n <= 40; n++ {
		base := []byte(strings.Repeat("a", n))
		hashes := map[uint64]string{strHash(string(base)): string(base)}
		for i := range n {
			b := append([]byte(nil), base...)
			b[i] = 'b'
			h := strHash(string(b))
			if h == 0 {
				t.Fatalf("strHash(%q) = 0", b)
			}
			if prev, dup := hashes[h]; dup {
				t.Fatalf("strHash(%q) == strHash(%q)", b, prev)
			}
			hashes[h] = string(b)
		}
	}
	if strHash("") == 0 {
		t.Fatal(`strHash("") = 0`)
	}
}

func BenchmarkFrozenGet(b *testing.B) {
	m := make(map[string]int)
	for i := range 100 {
		m[fmt.Sprintf("svc%d.example.com", i)] = i
	}
	f := freeze(m)
	key := "svc42.example.com"
	b.Run("frozen", func(b *testing.B) {
		for b.Loop() {
			if f.get(key) != 42 {
				b.Fatal("miss")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			if m[key] != 42 {
				b.Fatal("miss")
			}
		}
	})
}
