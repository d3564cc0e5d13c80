package e2e

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestLargeBodies streams 1 GiB each way through the proxy and checks the
// bytes and the proxy's peak memory.
func TestLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfers skipped with -short")
	}
	t.Parallel()
	const size = 1 << 30
	const maxRSS = 64 << 20
	up := newUpstream(t, "big", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(size))
			io.CopyBuffer(w, newPattern(size), make([]byte, 256<<10))
		case "/upload":
			h := crc32.NewIEEE()
			n, err := io.CopyBuffer(h, r.Body, make([]byte, 256<<10))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"n": n, "crc": h.Sum32()})
		}
	})
	p := startProxy(t, oneRoute(up.addr, ""))
	c := newClient(t, 0)
	wantN, wantSum := patternSum(size)

	t.Run("1 GiB response", func(t *testing.T) {
		start := time.Now()
		resp, err := c.Get(p.url("/download"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /download = %d, want 200", resp.StatusCode)
		}
		n, sum, err := sumReader(resp.Body)
		if err != nil || n != wantN || sum != wantSum {
			t.Errorf("downloaded %d bytes crc %08x (err %v), want %d bytes crc %08x", n, sum, err, wantN, wantSum)
		}
		t.Logf("1 GiB response in %v", time.Since(start))
	})
	t.Run("1 GiB request", func(t *testing.T) {
		start := time.Now()
		req, err := http.NewRequest(http.MethodPost, p.url("/upload"), newPattern(size))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			N   int64  `json:"n"`
			CRC uint32 `json:"crc"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /upload = %d (%q), want 200", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("upload reply %q: %v", b, err)
		}
		if got.N != wantN || got.CRC != wantSum {
			t.Errorf("upstream received %d bytes crc %08x, want %d bytes crc %08x", got.N, got.CRC, wantN, wantSum)
		}
		t.Logf("1 GiB request in %v", time.Since(start))
	})
	if hwm := vmHWM(t, p.cmd.Process.Pid); hwm > maxRSS {
		t.Errorf("proxy peak RSS (VmHWM) = %s, want under %s", mib(hwm), mib(maxRSS))
	} else {
		t.Logf("proxy peak RSS %s", mib(hwm))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
