package h2guard

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ---------------------------------------------------------------------
// Helpers: a chunking fake conn, a reader loop and a client stream builder.

// chunkConn is a net.Conn whose Read hands out at most chunk bytes of r
// per call. With eofWithLast the call that drains r also returns io.EOF.
type chunkConn struct {
	r           *bytes.Reader
	chunk       int
	eofWithLast bool
}

func newChunkConn(b []byte, chunk int, eofWithLast bool) *chunkConn {
	return &chunkConn{r: bytes.NewReader(b), chunk: chunk, eofWithLast: eofWithLast}
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n, err := c.r.Read(p)
	if err == nil && c.eofWithLast && c.r.Len() == 0 {
		err = io.EOF
	}
	return n, err
}

func (c *chunkConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *chunkConn) Close() error                       { return nil }
func (c *chunkConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *chunkConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *chunkConn) SetDeadline(t time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(t time.Time) error { return nil }

// readThrough reads c with a buffer of bufSize until Read fails, and
// returns what it read and the error. A reader that keeps returning
// (0, nil) is reported as an error.
func readThrough(c io.Reader, bufSize int) ([]byte, error) {
	var out []byte
	buf := make([]byte, bufSize)
	zero := 0
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			if zero++; zero > 100 {
				return out, errors.New("Read keeps returning (0, nil)")
			}
		} else {
			zero = 0
		}
	}
}

// Read-chunk patterns: bytes per Read of the underlying conn, and sizes
// of the buffer the guard's reader passes.
var (
	connChunks = []int{1, 2, 7, 9, 100, 4096}
	readSizes  = []int{1, 9, 4096}
)

// forEachPattern runs f for every read-chunk pattern.
func forEachPattern(t *testing.T, f func(t *testing.T, chunk, size int, eofWithLast bool)) {
	for _, chunk := range connChunks {
		for _, size := range readSizes {
			for _, eof := range []bool{false, true} {
				t.Run(fmt.Sprintf("chunk%d/buf%d/eof%v", chunk, size, eof), func(t *testing.T) {
					f(t, chunk, size, eof)
				})
			}
		}
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// stream builds the bytes a client sends: the preface, then frames
// written with an http2.Framer and header blocks encoded with one
// hpack.Encoder, so the dynamic table carries over between requests.
type stream struct {
	b    bytes.Buffer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

func newStream() *stream {
	s := &stream{}
	s.b.WriteString(http2.ClientPreface)
	s.fr = http2.NewFramer(&s.b, nil)
	s.fr.AllowIllegalWrites = true
	s.enc = hpack.NewEncoder(&s.hbuf)
	return s
}

// mark is the offset of the next frame.
func (s *stream) mark() int { return s.b.Len() }

func (s *stream) bytes() []byte { return bytes.Clone(s.b.Bytes()) }

// block encodes name/value pairs; a name starting with "!" is sent as
// never-indexed (sensitive).
func (s *stream) block(kv ...string) []byte {
	s.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		name, sensitive := strings.CutPrefix(kv[i], "!")
		must(s.enc.WriteField(hpack.HeaderField{Name: name, Value: kv[i+1], Sensitive: sensitive}))
	}
	return bytes.Clone(s.hbuf.Bytes())
}

func (s *stream) settings(ss ...http2.Setting) { must(s.fr.WriteSettings(ss...)) }

// headers writes one HEADERS frame with END_HEADERS.
func (s *stream) headers(id uint32, endStream bool, kv ...string) {
	s.headersBlock(id, endStream, s.block(kv...))
}

func (s *stream) headersBlock(id uint32, endStream bool, block []byte) {
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block,
		EndStream: endStream, EndHeaders: true}))
}

// split writes block as a HEADERS frame and CONTINUATION frames of at
// most frag bytes each. It returns the offset of the last frame.
func (s *stream) split(id uint32, endStream bool, block []byte, frag int) (last int) {
	first := min(frag, len(block))
	last = s.mark()
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:first],
		EndStream: endStream, EndHeaders: first == len(block)}))
	for rest := block[first:]; len(rest) > 0; {
		n := min(frag, len(rest))
		last = s.mark()
		must(s.fr.WriteContinuation(id, n == len(rest), rest[:n]))
		rest = rest[n:]
	}
	return last
}

func (s *stream) data(id uint32, endStream bool, n int) {
	must(s.fr.WriteData(id, endStream, bytes.Repeat([]byte{'d'}, n)))
}

func (s *stream) raw(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	must(s.fr.WriteRawFrame(typ, flags, id, payload))
}

// req returns the fields of a GET request for path, then extra.
func req(path string, extra ...string) []string {
	return append([]string{":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", path}, extra...)
}

// post returns the fields of a POST request for path, then extra.
func post(path string, extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", path,
		"content-type", "application/octet-stream"}, extra...)
}

// appendInt appends an HPACK integer with an n-bit prefix; first holds
// the bits above the prefix.
func appendInt(dst []byte, first byte, n uint, i uint64) []byte {
	k := uint64(1)<<n - 1
	if i < k {
		return append(dst, first|byte(i))
	}
	dst = append(dst, first|byte(k))
	i -= k
	for ; i >= 128; i >>= 7 {
		dst = append(dst, byte(0x80|i&0x7f))
	}
	return append(dst, byte(i))
}

// appendStr appends a raw (not Huffman-coded) HPACK string.
func appendStr(dst []byte, s string) []byte {
	return append(appendInt(dst, 0, 7, uint64(len(s))), s...)
}

// literal returns a literal field with a new name: kind is 0x00 without
// indexing, 0x10 never indexed, 0x40 with incremental indexing.
func literal(kind byte, name, value string) []byte {
	return appendStr(appendStr([]byte{kind}, name), value)
}

// staticGET is a GET request for / using only the static table and
// literals without indexing, so it leaves the dynamic table alone.
var staticGET = []byte{0x82, 0x86, 0x84, 0x01, 0x01, 'x'}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// padBlock appends to head a never-indexed "x-big" field that makes the
// block exactly size bytes long.
func padBlock(head []byte, size int) []byte {
	for l := size; l >= 0; l-- {
		if b := cat(head, literal(0x10, "x-big", strings.Repeat("b", l))); len(b) == size {
			return b
		}
	}
	panic("no fit")
}

// ---------------------------------------------------------------------
// 1. Pass-through fidelity.

// passStreams are valid client streams (and a few that the server will
// reject but the guard must pass unchanged).
func passStreams() map[string][]byte {
	m := map[string][]byte{}

	s := newStream()
	s.settings()
	s.headers(1, true, req("/")...)
	m["minimal"] = s.bytes()

	// Many requests sharing the dynamic table, with table size updates
	// and evictions.
	s = newStream()
	s.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	must(s.fr.WriteWindowUpdate(0, 1<<24))
	for i := range 40 {
		id := uint32(2*i + 1)
		kv := req(fmt.Sprintf("/items/%d?q=%d", i%5, i), "user-agent", "test/1.0",
			"accept", "*/*", "x-a", "b", "cookie", fmt.Sprintf("session=%d", i%3),
			"x-big", strings.Repeat(string(rune('a'+i%26)), 300*(i%4)))
		switch i {
		case 10:
			s.enc.SetMaxDynamicTableSize(256)
		case 20:
			s.enc.SetMaxDynamicTableSize(0)
		case 21:
			s.enc.SetMaxDynamicTableSize(4096)
		}
		if i%7 == 3 {
			kv = append(kv, "!authorization", "secret")
		}
		s.headers(id, true, kv...)
	}
	m["dynamic-table"] = s.bytes()

	// Header blocks split over CONTINUATION frames of various sizes.
	s = newStream()
	s.settings()
	for i, frag := range []int{1, 7, 100, 4096} {
		kv := req("/cont", "x-long", strings.Repeat("v", 200), "x-n", fmt.Sprint(i))
		s.split(uint32(2*i+1), true, s.block(kv...), frag)
	}
	m["continuation"] = s.bytes()

	// Padded and prioritized HEADERS.
	s = newStream()
	s.settings()
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: s.block(req("/p1")...),
		EndStream: true, EndHeaders: true, PadLength: 200,
		Priority: http2.PriorityParam{StreamDep: 0, Exclusive: true, Weight: 15}}))
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: s.block(req("/p2")...),
		EndStream: true, EndHeaders: true, PadLength: 0}))
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: s.block(req("/p3")...),
		EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 3, Weight: 200}}))
	// Padded and prioritized, split over CONTINUATION.
	blk := s.block(req("/p4", "x-pad", strings.Repeat("z", 100))...)
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: blk[:10],
		EndStream: true, PadLength: 7, Priority: http2.PriorityParam{StreamDep: 1, Weight: 1}}))
	must(s.fr.WriteContinuation(7, true, blk[10:]))
	m["padded-priority"] = s.bytes()

	// Uploads: DATA frames small and large, padded, and trailers.
	s = newStream()
	s.settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
	s.headers(1, false, post("/upload", "content-length", "50407")...)
	s.data(1, false, 7)
	s.data(1, false, 16384)
	must(s.fr.WriteDataPadded(1, false, bytes.Repeat([]byte{'p'}, 1000), bytes.Repeat([]byte{0}, 255)))
	s.data(1, false, 0)
	s.raw(http2.FrameData, 0, 1, bytes.Repeat([]byte{'L'}, 33000)) // > 16384: the server rejects it
	s.headers(1, true, "x-checksum", "abc", "te", "trailers")
	s.headers(3, false, post("/upload2", "te", "trailers")...)
	s.data(3, true, 4000)
	m["data"] = s.bytes()

	// Control frames.
	s = newStream()
	s.settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536})
	must(s.fr.WriteSettingsAck())
	must(s.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	must(s.fr.WritePing(true, [8]byte{8, 7, 6, 5, 4, 3, 2, 1}))
	must(s.fr.WriteWindowUpdate(0, 12345))
	s.headers(1, false, post("/x")...)
	must(s.fr.WriteWindowUpdate(1, 99))
	must(s.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 3}))
	must(s.fr.WriteRSTStream(1, http2.ErrCodeCancel))
	s.raw(0x20, 0xff, 0, bytes.Repeat([]byte{'u'}, 100))      // unknown type
	s.raw(0x21, 0x00, 9, bytes.Repeat([]byte{'U'}, 40000))    // unknown, > 16384
	s.raw(http2.FrameSettings, http2.FlagSettingsAck, 0, nil) // ack, empty
	s.headers(3, true, req("/after-control")...)
	must(s.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("bye")))
	m["control"] = s.bytes()

	// Held frames of exactly the largest held size: HEADERS and
	// CONTINUATION with 16384-byte payloads, SETTINGS of 2730 entries.
	s = newStream()
	settings := make([]http2.Setting, 2730)
	for i := range settings {
		settings[i] = http2.Setting{ID: http2.SettingID(0x100 + i), Val: uint32(i)}
	}
	s.settings(settings...)
	head := s.block(req("/max")...)
	big := padBlock(head, 16384)
	s.headersBlock(1, true, big)
	cont := padBlock(head, 16384+100)
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: cont[:100], EndStream: true}))
	must(s.fr.WriteContinuation(3, true, cont[100:]))
	s.headers(5, true, req("/after-max")...)
	m["max-held"] = s.bytes()

	// Header frames larger than the largest held size pass through (the
	// server answers FRAME_SIZE_ERROR).
	s = newStream()
	s.settings()
	s.headers(1, true, req("/")...)
	huge := cat(s.block(req("/huge")...), literal(0x00, "x-huge", strings.Repeat("h", 20000)))
	s.headersBlock(3, true, huge)
	m["oversized-headers"] = s.bytes()

	s = newStream()
	s.settings()
	s.headers(1, true, req("/")...)
	must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: s.block(req("/c")...)}))
	must(s.fr.WriteContinuation(3, true, huge))
	m["oversized-continuation"] = s.bytes()

	// Streams that end inside the preface, a frame header or a payload
	// are passed whole for the server to report.
	full := m["dynamic-table"]
	m["truncated-preface"] = full[:10]
	m["truncated-frame-header"] = full[:len(http2.ClientPreface)+4]
	m["truncated-held-frame"] = m["max-held"][:len(http2.ClientPreface)+9+16380+9+100]
	m["truncated-data"] = m["data"][:len(m["data"])-5000]
	m["preface-only"] = []byte(http2.ClientPreface)
	m["empty"] = nil

	var all []byte
	for _, name := range []string{"minimal", "control", "padded-priority", "data"} {
		all = append(all, m[name][len(http2.ClientPreface):]...)
	}
	m["concatenated"] = cat([]byte(http2.ClientPreface), all)
	return m
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	for name, in := range passStreams() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forEachPattern(t, func(t *testing.T, chunk, size int, eof bool) {
				out, err := readThrough(New(newChunkConn(in, chunk, eof)), size)
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("output differs from input: %d bytes vs %d, first difference at %d",
						len(out), len(in), firstDiff(out, in))
				}
			})
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDynamicTableInSync checks the guard decodes every field as the
// client encoded it, across requests that index, reference and evict
// dynamic table entries and resize the table.
func TestDynamicTableInSync(t *testing.T) {
	t.Parallel()
	s := newStream()
	s.settings()
	var want []hpack.HeaderField
	for i := range 60 {
		kv := req(fmt.Sprintf("/%d", i%4), "x-a", "b", "x-i", fmt.Sprint(i%9),
			"x-big", strings.Repeat("q", 100*(i%11)), "!x-secret", fmt.Sprint(i%2))
		switch i % 13 {
		case 5:
			s.enc.SetMaxDynamicTableSize(uint32(64 * (i % 5)))
		case 9:
			s.enc.SetMaxDynamicTableSize(4096)
		}
		blk := s.block(kv...)
		if i%3 == 0 {
			s.split(uint32(2*i+1), true, blk, 5)
		} else {
			s.headersBlock(uint32(2*i+1), true, blk)
		}
		for j := 0; j < len(kv); j += 2 {
			name, _ := strings.CutPrefix(kv[j], "!")
			want = append(want, hpack.HeaderField{Name: name, Value: kv[j+1]})
		}
	}
	in := s.bytes()
	for _, chunk := range []int{1, 13, 4096} {
		g := New(newChunkConn(in, chunk, false)).(*Conn)
		var got []hpack.HeaderField
		g.dec.SetEmitFunc(func(f hpack.HeaderField) {
			got = append(got, hpack.HeaderField{Name: f.Name, Value: f.Value})
			g.field(f)
		})
		out, err := readThrough(g, 4096)
		if err != io.EOF || !bytes.Equal(out, in) {
			t.Fatalf("chunk %d: err = %v, output equal = %v", chunk, err, bytes.Equal(out, in))
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: decoded %d fields, want %d", chunk, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d: field %d = %q: %.40q, want %q: %.40q", chunk, i,
					got[i].Name, got[i].Value, want[i].Name, want[i].Value)
			}
		}
	}
}

// ---------------------------------------------------------------------
// 2. Malformed requests.

func TestMalformed(t *testing.T) {
	t.Parallel()
	// Each case writes to a stream that already holds the preface,
	// SETTINGS and a valid request on stream 1 that added "x-a: b" to the
	// dynamic table, and returns the offset of the frame that must fail
	// (-1: none must). A valid request follows it.
	type tc struct {
		name  string
		build func(s *stream) int
	}
	bad := func(kv ...string) func(s *stream) int {
		return func(s *stream) int {
			m := s.mark()
			s.headers(3, true, req("/bad", kv...)...)
			return m
		}
	}
	good := func(kv ...string) func(s *stream) int {
		return func(s *stream) int {
			s.headers(3, true, req("/good", kv...)...)
			return -1
		}
	}
	cases := []tc{
		{"connection", bad("connection", "close")},
		{"keep-alive", bad("keep-alive", "timeout=5")},
		{"proxy-connection", bad("proxy-connection", "keep-alive")},
		{"transfer-encoding", bad("transfer-encoding", "chunked")},
		{"upgrade", bad("upgrade", "h2c")},
		{"te-gzip", bad("te", "gzip")},
		{"te-trailers-gzip", bad("te", "trailers, gzip")},
		{"te-Trailers", bad("te", "Trailers")},
		{"te-trailers", good("te", "trailers")},
		{"lookalike-names", good("connections", "x", "x-upgrade", "y", "te-x", "gzip", "keep-alive-x", "1")},
		{"value-only-lookalike", good("x-h", "connection")},
		{"connection-empty", bad("connection", "")},
		{"connection-never-indexed", bad("!connection", "close")},
		{"connection-after-many", bad("x-1", "1", "x-2", "2", "x-3", strings.Repeat("3", 3000), "connection", "close")},
		// transfer-encoding with an empty value is entry 57 of the
		// static table: a one-byte indexed field.
		{"static-indexed-transfer-encoding", func(s *stream) int {
			m := s.mark()
			s.headersBlock(3, true, cat(staticGET, []byte{0x80 | 57}))
			return m
		}},
		// A benign field indexed by request 1 and referenced here,
		// next to a new connection field.
		{"dynamic-reference-plus-connection", func(s *stream) int {
			m := s.mark()
			blk := s.block(req("/d", "x-a", "b", "connection", "x")...)
			if !bytes.Contains(blk, []byte{0xbe}) && !bytes.Contains(blk, []byte{0xbf}) {
				panic("x-a: b not referenced from the dynamic table")
			}
			s.headersBlock(3, true, blk)
			return m
		}},
		// The connection field split between HEADERS and CONTINUATION:
		// only the frame that ends the block can fail.
		{"split-in-field", func(s *stream) int {
			head := s.block(req("/split")...)
			blk := cat(head, s.block("connection", "keep-alive"))
			i := len(head) + 3
			must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:i], EndStream: true}))
			m := s.mark()
			must(s.fr.WriteContinuation(3, true, blk[i:]))
			return m
		}},
		{"continuations-field-in-first", func(s *stream) int {
			blk := s.block(append([]string{"upgrade", "websocket"}, req("/c", "x-pad", strings.Repeat("p", 300))...)...)
			return s.split(3, true, blk, 40)
		}},
		{"continuations-field-in-last", func(s *stream) int {
			blk := s.block(req("/c", "x-pad", strings.Repeat("p", 300), "te", "deflate")...)
			return s.split(3, true, blk, 40)
		}},
		{"continuations-clean", func(s *stream) int {
			s.split(3, true, s.block(req("/c", "x-pad", strings.Repeat("p", 300), "te", "trailers")...), 40)
			return -1
		}},
		{"padded-priority", func(s *stream) int {
			m := s.mark()
			must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3,
				BlockFragment: s.block(req("/pp", "transfer-encoding", "gzip")...),
				EndStream:     true, EndHeaders: true, PadLength: 33,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 7}}))
			return m
		}},
		// Padding and priority bytes are not part of the header block:
		// padding that looks like a connection field is ignored.
		{"padding-looks-like-field", func(s *stream) int {
			blk := s.block(req("/pad")...)
			pad := literal(0x00, "connection", "close")
			payload := cat([]byte{byte(len(pad))}, []byte{0, 0, 0, 1, 16}, blk, pad)
			s.raw(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersPriority|
				http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 3, payload)
			return -1
		}},
		{"trailers", func(s *stream) int {
			s.headers(3, false, post("/t")...)
			s.data(3, false, 100)
			m := s.mark()
			s.headers(3, true, "x-sum", "1", "transfer-encoding", "chunked")
			return m
		}},
		{"trailers-te", func(s *stream) int {
			s.headers(3, false, post("/t")...)
			s.data(3, false, 100)
			m := s.mark()
			s.headers(3, true, "te", "gzip")
			return m
		}},
		{"trailers-clean", func(s *stream) int {
			s.headers(3, false, post("/t")...)
			s.data(3, false, 100)
			s.headers(3, true, "x-sum", "1", "te", "trailers")
			return -1
		}},
		// An undecodable block is the server's to report (it sends
		// GOAWAY COMPRESSION_ERROR): the guard passes it, and fails at
		// the next header block, which it can no longer check.
		{"compression-error", func(s *stream) int {
			s.headersBlock(3, true, cat(staticGET, []byte{0x80 | 70}))
			return s.mark()
		}},
		{"compression-error-truncated-block", func(s *stream) int {
			s.headersBlock(3, true, cat(staticGET, []byte{0x00, 0x05, 'x'}))
			return s.mark()
		}},
		{"compression-error-in-continuation", func(s *stream) int {
			must(s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: staticGET}))
			must(s.fr.WriteContinuation(3, false, []byte{0x80 | 99}))
			must(s.fr.WriteContinuation(3, true, literal(0x00, "connection", "close")))
			return s.mark()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStream()
			s.settings(http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 1 << 20})
			s.headers(1, true, req("/first", "x-a", "b")...)
			cut := c.build(s)
			s.headers(5, true, req("/last")...)
			in := s.bytes()
			forEachPattern(t, func(t *testing.T, chunk, size int, eof bool) {
				g := New(newChunkConn(in, chunk, eof))
				out, err := readThrough(g, size)
				if cut < 0 {
					if err != io.EOF || !bytes.Equal(out, in) {
						t.Fatalf("err = %v, %d of %d bytes (equal %v); want all bytes and io.EOF",
							err, len(out), len(in), bytes.Equal(out, in))
					}
					return
				}
				want := ErrMalformed
				if strings.HasPrefix(c.name, "compression-error") {
					want = errUnchecked
				}
				if err != want {
					t.Fatalf("err = %v, want %v", err, want)
				}
				if !bytes.Equal(out, in[:cut]) {
					t.Fatalf("delivered %d bytes (prefix equal %v), want the %d before the frame",
						len(out), bytes.Equal(out, in[:min(len(out), len(in))]), cut)
				}
				if n, err := g.Read(make([]byte, 10)); n != 0 || err != want {
					t.Fatalf("Read after the error = %d, %v", n, err)
				}
			})
		})
	}
}

// desyncStream is a stream whose first request makes the server stop
// decoding strings (an invalid field name disables its emitter, and
// with it the Huffman decoding of later non-indexed literals), then
// hides a Huffman string the guard's decoder rejects, then indexes
// "connection: close". The second request references that entry.
// It returns the stream and the offset of the second request.
func desyncStream() ([]byte, int) {
	s := newStream()
	s.settings()
	blk1 := cat(staticGET,
		literal(0x00, "X-Bad", "1"),                                     // invalid name: the server stops emitting
		[]byte{0x00, 0x03, 'x', '-', 'h', 0x84, 0xff, 0xff, 0xff, 0xff}, // invalid Huffman (EOS)
		literal(0x40, "connection", "close"))                            // indexed as dynamic entry 62
	s.headersBlock(1, true, blk1)
	m := s.mark()
	s.headersBlock(3, true, cat(staticGET, []byte{0x80 | 62}))
	return s.bytes(), m
}

// TestDesync checks a header block the guard fails to decode (while the
// server decodes it and carries on) does not let a later block through
// unchecked.
func TestDesync(t *testing.T) {
	t.Parallel()
	in, cut := desyncStream()
	forEachPattern(t, func(t *testing.T, chunk, size int, eof bool) {
		out, err := readThrough(New(newChunkConn(in, chunk, eof)), size)
		if err == io.EOF || err == nil {
			t.Fatalf("err = %v: the request after the undecodable block passed", err)
		}
		if !bytes.Equal(out, in[:cut]) {
			t.Fatalf("delivered %d bytes, want the %d before the second request", len(out), cut)
		}
	})
}

// ---------------------------------------------------------------------
// 3. SETTINGS.

// readSettings parses the first frame after the preface of out, which
// must be SETTINGS, and returns its settings.
func readSettings(t *testing.T, out []byte) []http2.Setting {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(out[len(http2.ClientPreface):]))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("frame %v, want SETTINGS", f)
	}
	if sf.HasDuplicates() {
		t.Errorf("SETTINGS still has duplicates")
	}
	var ss []http2.Setting
	must(sf.ForeachSetting(func(s http2.Setting) error { ss = append(ss, s); return nil }))
	return ss
}

func known(id http2.SettingID) bool { return id >= 1 && id <= 9 }

func TestSettings(t *testing.T) {
	t.Parallel()
	iws, mfs, push := http2.SettingInitialWindowSize, http2.SettingMaxFrameSize, http2.SettingEnablePush
	cases := []struct {
		name string
		in   []http2.Setting
		// surviving settings, in order, after dropping unknown ids that
		// the input did not have
		want []http2.Setting
	}{
		{"repeat", []http2.Setting{{ID: iws, Val: 100}, {ID: iws, Val: 1}}, []http2.Setting{{ID: iws, Val: 1}}},
		{"interleaved", []http2.Setting{{ID: iws, Val: 1}, {ID: mfs, Val: 20000}, {ID: iws, Val: 2},
			{ID: push, Val: 0}, {ID: mfs, Val: 16384}, {ID: iws, Val: 3}},
			[]http2.Setting{{ID: push, Val: 0}, {ID: mfs, Val: 16384}, {ID: iws, Val: 3}}},
		{"repeated-unknown", []http2.Setting{{ID: 0xf000, Val: 1}, {ID: 0xf000, Val: 2}},
			[]http2.Setting{{ID: 0xf000, Val: 2}}},
		// A renamed entry must not take an id the frame already has.
		{"rename-collision", []http2.Setting{{ID: iws, Val: 100}, {ID: iws, Val: 1}, {ID: 0xf000, Val: 7}},
			[]http2.Setting{{ID: iws, Val: 1}, {ID: 0xf000, Val: 7}}},
		{"rename-collision-2", []http2.Setting{{ID: iws, Val: 100}, {ID: mfs, Val: 16384}, {ID: iws, Val: 1},
			{ID: mfs, Val: 16385}, {ID: 0xf001, Val: 7}, {ID: 0xf000, Val: 8}},
			[]http2.Setting{{ID: iws, Val: 1}, {ID: mfs, Val: 16385}, {ID: 0xf001, Val: 7}, {ID: 0xf000, Val: 8}}},
	}
	// 50 repeated parameters whose ids are the first 50 a rename could
	// take, 100 entries in all (the most x/net takes).
	var many, manyWant []http2.Setting
	for k := range 50 {
		many = append(many, http2.Setting{ID: http2.SettingID(0xf000 + k), Val: uint32(k)})
		manyWant = append(manyWant, http2.Setting{ID: http2.SettingID(0xf031 - k), Val: uint32(100 + k)})
	}
	cases = append(cases, struct {
		name     string
		in, want []http2.Setting
	}{"many-renames", append(many, manyWant...), manyWant})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStream()
			s.settings(c.in...)
			rest := s.mark()
			must(s.fr.WriteSettingsAck())
			s.headers(1, true, req("/")...)
			in := s.bytes()
			for _, chunk := range []int{1, 5, 4096} {
				out, err := readThrough(New(newChunkConn(in, chunk, false)), 4096)
				if err != io.EOF || len(out) != len(in) || !bytes.Equal(out[rest:], in[rest:]) {
					t.Fatalf("err %v, %d bytes of %d; the frames after SETTINGS must be unchanged", err, len(out), len(in))
				}
				got := readSettings(t, out)
				if len(got) != len(c.in) {
					t.Fatalf("%d settings, want %d", len(got), len(c.in))
				}
				inIDs := map[http2.SettingID]bool{}
				for _, s := range c.in {
					inIDs[s.ID] = true
				}
				var kept []http2.Setting
				for i, s := range got {
					if s.Val != c.in[i].Val {
						t.Errorf("entry %d value %d, want %d", i, s.Val, c.in[i].Val)
					}
					if s.ID == c.in[i].ID {
						kept = append(kept, s)
						continue
					}
					if known(s.ID) || inIDs[s.ID] {
						t.Errorf("entry %d renamed to %v, want an id unknown to the frame", i, s.ID)
					}
				}
				if fmt.Sprint(kept) != fmt.Sprint(c.want) {
					t.Errorf("kept %v, want %v", kept, c.want)
				}
			}
		})
	}

	t.Run("first-entry-renamed", func(t *testing.T) {
		s := newStream()
		s.settings(http2.Setting{ID: iws, Val: 100}, http2.Setting{ID: iws, Val: 1})
		out, _ := readThrough(New(newChunkConn(s.bytes(), 3, false)), 9)
		got := readSettings(t, out)
		if known(got[0].ID) || got[1] != (http2.Setting{ID: iws, Val: 1}) {
			t.Fatalf("got %v", got)
		}
	})

	// x/net hangs up on SETTINGS frames of more than 100 parameters:
	// the guard leaves them alone.
	t.Run("more-than-100", func(t *testing.T) {
		ss := make([]http2.Setting, 101)
		for i := range ss {
			ss[i] = http2.Setting{ID: iws, Val: uint32(i)}
		}
		s := newStream()
		s.settings(ss...)
		in := s.bytes()
		out, err := readThrough(New(newChunkConn(in, 4096, false)), 4096)
		if err != io.EOF || !bytes.Equal(out, in) {
			t.Fatalf("err %v, output differs at %d", err, firstDiff(out, in))
		}
	})

	t.Run("unchanged", func(t *testing.T) {
		s := newStream()
		s.settings(http2.Setting{ID: iws, Val: 100}, http2.Setting{ID: mfs, Val: 16384},
			http2.Setting{ID: 0xf000, Val: 1}, http2.Setting{ID: 0x99, Val: 1})
		must(s.fr.WriteSettingsAck())
		// ACK frames are not touched, even with a (bad) payload of
		// repeated parameters.
		s.raw(http2.FrameSettings, http2.FlagSettingsAck, 0,
			[]byte{0, 4, 0, 0, 0, 1, 0, 4, 0, 0, 0, 2})
		s.settings()
		in := s.bytes()
		out, err := readThrough(New(newChunkConn(in, 7, false)), 4096)
		if err != io.EOF || !bytes.Equal(out, in) {
			t.Fatalf("err %v, output differs at %d", err, firstDiff(out, in))
		}
	})
}

// ---------------------------------------------------------------------
// 4. TLS.

var (
	certOnce sync.Once
	testCert tls.Certificate
)

func serverTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(err)
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{testCert}, NextProtos: []string{"h2"}}
}

type connectionStateHaver interface {
	ConnectionState() tls.ConnectionState
}

func TestTLS(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, serverTLSConfig(t))
	cli := tls.Client(b, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, ServerName: "localhost"})
	in := passStreams()["dynamic-table"]
	errc := make(chan error, 1)
	go func() {
		if err := cli.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err := cli.Write(in)
		if err == nil {
			err = cli.CloseWrite()
		}
		errc <- err
	}()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	g := New(srv)
	cs, ok := g.(connectionStateHaver)
	if !ok {
		t.Fatalf("New(*tls.Conn) = %T, which has no ConnectionState", g)
	}
	st := cs.ConnectionState()
	if !st.HandshakeComplete || st.NegotiatedProtocol != "h2" || st.ServerName != "localhost" {
		t.Fatalf("ConnectionState = complete %v, protocol %q, server name %q", st.HandshakeComplete,
			st.NegotiatedProtocol, st.ServerName)
	}
	out, err := readThrough(g, 4096)
	if err != io.EOF || !bytes.Equal(out, in) {
		t.Fatalf("err %v, output equal %v", err, bytes.Equal(out, in))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if _, ok := New(p1).(connectionStateHaver); ok {
		t.Fatal("New over a plain conn has a ConnectionState method")
	}
	if _, ok := New(&chunkConn{}).(*Conn); !ok {
		t.Fatal("New over a plain conn is not a *Conn")
	}
}

// ---------------------------------------------------------------------
// 5. Integration with the x/net/http2 server and client.

func testHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d %s %s", n, hex.EncodeToString(h.Sum(nil)), r.Trailer.Get("X-Sum"))
	default:
		fmt.Fprintf(w, "%s %s %s tls=%v", r.Method, r.URL.Path, r.Header.Get("X-A"),
			r.TLS != nil && r.TLS.NegotiatedProtocol == "h2")
	}
}

// startServer serves HTTP/2 on a loopback listener, with conns wrapped
// by New when guard is set, and TLS when tlsCfg is not nil.
func startServer(t *testing.T, guard bool, tlsCfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{MaxReadFrameSize: 16384}
	base := &http.Server{ErrorLog: log.New(io.Discard, "", 0)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var nc net.Conn = c
				if tlsCfg != nil {
					tc := tls.Server(c, tlsCfg)
					if err := tc.Handshake(); err != nil {
						return
					}
					nc = tc
				}
				if guard {
					nc = New(nc)
				}
				srv.ServeConn(nc, &http2.ServeConnOpts{Handler: http.HandlerFunc(testHandler), BaseConfig: base})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func do(t *testing.T, c *http.Client, r *http.Request) string {
	t.Helper()
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("%s %s: %s %s: %s", r.Method, r.URL, resp.Proto, resp.Status, b)
	}
	return string(b)
}

func TestIntegration(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			t.Parallel()
			var cfg *tls.Config
			var c *http.Client
			scheme := "http"
			if useTLS {
				cfg = serverTLSConfig(t)
				tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
				t.Cleanup(tr.CloseIdleConnections)
				c = &http.Client{Transport: tr, Timeout: 10 * time.Second}
				scheme = "https"
			} else {
				c = h2cClient(t)
			}
			base := scheme + "://" + startServer(t, true, cfg)

			for i := range 20 {
				r, _ := http.NewRequest("GET", fmt.Sprintf("%s/get/%d", base, i), nil)
				r.Header.Set("X-A", "b")
				r.Header.Set("Te", "trailers")
				r.Header.Set("Cookie", fmt.Sprintf("c=%d", i%3))
				want := fmt.Sprintf("GET /get/%d b tls=%v", i, useTLS)
				if got := do(t, c, r); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			body := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
			sum := sha256.Sum256(body)
			r, _ := http.NewRequest("POST", base+"/echo", bytes.NewReader(body))
			want := fmt.Sprintf("%d %x ", len(body), sum)
			if got := do(t, c, r); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			// Trailers go out as a second HEADERS frame.
			r, _ = http.NewRequest("POST", base+"/echo", io.MultiReader(bytes.NewReader(body[:1000])))
			r.Trailer = http.Header{"X-Sum": {"42"}}
			want = fmt.Sprintf("%d %x 42", 1000, sha256.Sum256(body[:1000]))
			if got := do(t, c, r); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// rawResult is what a raw client saw from the server.
type rawResult struct {
	status map[uint32]string // :status by stream
	rst    map[uint32]http2.ErrCode
	goAway *http2.ErrCode
	closed bool // the server closed the connection
}

// rawExchange sends in to the server at addr and reads frames until the
// server closes the connection, sends GOAWAY, or answers every stream in
// await.
func rawExchange(t *testing.T, addr string, in []byte, await ...uint32) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.Write(in) }()
	fr := http2.NewFramer(nil, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	res := rawResult{status: map[uint32]string{}, rst: map[uint32]http2.ErrCode{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("timed out; so far %+v", res)
			}
			res.closed = true
			return res
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			res.status[f.StreamID] = f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			res.rst[f.StreamID] = f.ErrCode
		case *http2.GoAwayFrame:
			code := f.ErrCode
			res.goAway = &code
			return res
		}
		done := len(await) > 0
		for _, id := range await {
			if res.status[id] == "" {
				done = false
			}
		}
		if done {
			return res
		}
	}
}

func TestIntegrationRaw(t *testing.T) {
	t.Parallel()
	guarded := startServer(t, true, nil)
	plain := startServer(t, false, nil)

	// connection: close in a request: without the guard the server
	// answers 400; with it the connection is closed.
	s := newStream()
	s.settings()
	s.headers(1, true, req("/", "connection", "close")...)
	connClose := s.bytes()

	desync, _ := desyncStream()

	s = newStream()
	s.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	s.headers(1, true, req("/")...)
	repeated := s.bytes()

	s = newStream()
	s.settings(http2.Setting{ID: 0xf000, Val: 1}, http2.Setting{ID: 0xf000, Val: 2},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	s.headers(1, true, req("/")...)
	repeatedUnknown := s.bytes()

	s = newStream()
	s.settings()
	s.headersBlock(1, true, cat(staticGET, []byte{0x80 | 70}))
	compression := s.bytes()

	compare := func(name string, got rawResult, check func(rawResult) string) {
		t.Helper()
		if msg := check(got); msg != "" {
			t.Errorf("%s: %s (got %+v)", name, msg, got)
		}
	}
	served := func(id uint32) func(rawResult) string {
		return func(r rawResult) string {
			if r.status[id] != "200" {
				return fmt.Sprintf("stream %d not answered 200", id)
			}
			return ""
		}
	}
	refused := func(id uint32) func(rawResult) string {
		return func(r rawResult) string {
			if r.status[id] != "" {
				return fmt.Sprintf("stream %d answered %s, want the connection closed", id, r.status[id])
			}
			if !r.closed {
				return "connection not closed"
			}
			return ""
		}
	}
	status400 := func(id uint32) func(rawResult) string {
		return func(r rawResult) string {
			if r.status[id] != "400" {
				return fmt.Sprintf("stream %d: status %q, want 400 (control without the guard)", id, r.status[id])
			}
			return ""
		}
	}
	goAway := func(code http2.ErrCode) func(rawResult) string {
		return func(r rawResult) string {
			if r.goAway == nil || *r.goAway != code {
				return fmt.Sprintf("want GOAWAY %v", code)
			}
			return ""
		}
	}

	compare("connection-close/plain", rawExchange(t, plain, connClose, 1), status400(1))
	compare("connection-close/guarded", rawExchange(t, guarded, connClose, 1), refused(1))

	compare("desync/plain", rawExchange(t, plain, desync, 3), status400(3))
	compare("desync/guarded", rawExchange(t, guarded, desync, 3), refused(3))

	compare("repeated-settings/plain", rawExchange(t, plain, repeated, 1), goAway(http2.ErrCodeProtocol))
	compare("repeated-settings/guarded", rawExchange(t, guarded, repeated, 1), served(1))
	compare("repeated-unknown-settings/guarded", rawExchange(t, guarded, repeatedUnknown, 1), served(1))

	compare("compression-error/plain", rawExchange(t, plain, compression), goAway(http2.ErrCodeCompression))
	compare("compression-error/guarded", rawExchange(t, guarded, compression), goAway(http2.ErrCodeCompression))
}

// TestRapidReset: a client that resets more than half of at least 100
// streams loses the connection at the RST_STREAM that tips it; one that
// resets fewer, or resets many of only a few streams, keeps it.
func TestRapidReset(t *testing.T) {
	build := func(streams, resetEvery int) ([]byte, int) {
		s := newStream()
		s.settings()
		tip := -1
		resets := 0
		for i := 0; i < streams; i++ {
			id := uint32(2*i + 1)
			s.headers(id, true, req("/")...)
			if resetEvery > 0 && i%resetEvery == 0 {
				at := s.mark()
				must(s.fr.WriteRSTStream(id, http2.ErrCodeCancel))
				resets++
				if tip < 0 && i+1 >= resetMinStreams && 2*resets > i+1 {
					tip = at
				}
			}
		}
		return s.bytes(), tip
	}
	tests := []struct {
		name              string
		streams, resetEvy int
		wantErr           bool
	}{
		{"every stream reset", 300, 1, true},
		{"a third reset", 300, 3, false},
		{"few streams, all reset", resetMinStreams - 1, 1, false},
		{"no resets", 300, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, tip := build(tt.streams, tt.resetEvy)
			out, err := readThrough(New(newChunkConn(in, 4096, true)), 4096)
			if !tt.wantErr {
				if err != io.EOF || !bytes.Equal(out, in) {
					t.Fatalf("err %v, %d of %d bytes passed", err, len(out), len(in))
				}
				return
			}
			if !errors.Is(err, ErrRapidReset) {
				t.Fatalf("err %v, want ErrRapidReset", err)
			}
			if !bytes.Equal(out, in[:tip]) {
				t.Errorf("passed %d bytes, want the %d before the tipping RST_STREAM", len(out), tip)
			}
		})
	}
}
