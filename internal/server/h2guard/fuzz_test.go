package h2guard

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// FuzzGuard reads the preface and arbitrary bytes through the guard with
// arbitrary chunking, and checks that Read returns, that the bytes
// delivered are the input except for renamed SETTINGS parameters, and
// that an error other than io.EOF comes at a header frame after every
// byte before it.
func FuzzGuard(f *testing.F) {
	streams := passStreams()
	for _, name := range slices.Sorted(maps.Keys(streams)) {
		in := streams[name]
		if len(in) < len(http2.ClientPreface) || len(in) > 20000 {
			continue
		}
		f.Add(in[len(http2.ClientPreface):], uint16(7), uint16(9), false)
	}
	in, _ := desyncStream()
	f.Add(in[len(http2.ClientPreface):], uint16(4096), uint16(4096), true)
	s := newStream()
	s.settings(http2.Setting{ID: 4, Val: 100}, http2.Setting{ID: 4, Val: 1}, http2.Setting{ID: 0xf000, Val: 1},
		http2.Setting{ID: 0xf000, Val: 2}, http2.Setting{ID: 0xf001, Val: 3})
	s.headers(1, true, req("/", "x-a", "b")...)
	s.split(3, true, s.block(req("/", "x-a", "b", "connection", "close")...), 5)
	f.Add(s.bytes()[len(http2.ClientPreface):], uint16(1), uint16(1), false)

	f.Fuzz(func(t *testing.T, data []byte, chunk, size uint16, eof bool) {
		in := append([]byte(http2.ClientPreface), data...)
		type result struct {
			out       []byte
			err, err2 error
		}
		done := make(chan result, 1)
		go func() {
			g := New(newChunkConn(in, 1+int(chunk)%5000, eof))
			out, err := readThrough(g, 1+int(size)%5000)
			_, err2 := g.Read(make([]byte, 1))
			done <- result{out, err, err2}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not return")
		}
		if r.err2 != r.err {
			t.Fatalf("Read after %v returned %v", r.err, r.err2)
		}
		if msg := checkOutput(in, r.out, r.err); msg != "" {
			t.Fatal(msg)
		}
	})
}

// checkOutput checks what the guard delivered for in: out, then err.
func checkOutput(in, out []byte, err error) string {
	if len(out) > len(in) {
		return fmt.Sprintf("%d bytes out of %d in", len(out), len(in))
	}
	switch err {
	case io.EOF:
		if len(out) != len(in) {
			return fmt.Sprintf("io.EOF after %d of %d bytes", len(out), len(in))
		}
	case ErrMalformed, errUnchecked, ErrRapidReset:
	default:
		return fmt.Sprintf("unexpected error %v", err)
	}
	// Walk the frames as the server would.
	pos := min(len(http2.ClientPreface), len(in))
	if !bytes.Equal(out[:min(pos, len(out))], in[:min(pos, len(out))]) {
		return "preface changed"
	}
	for pos+frameHeaderLen <= len(in) {
		if pos == len(out) && err != io.EOF {
			// The frame Read failed at: a header frame held whole.
			typ, flags, length := in[pos+3], in[pos+4], frameLen(in[pos:])
			switch {
			case pos+frameHeaderLen+length > len(in) || length > maxHeld:
				return fmt.Sprintf("%v at an incomplete or unheld frame", err)
			case err == ErrMalformed && (typ != frameHeaders && typ != frameContinuation || flags&flagEndHeaders == 0):
				return fmt.Sprintf("ErrMalformed at a frame of type %d flags %#x", typ, flags)
			case err == errUnchecked && typ != frameHeaders:
				return fmt.Sprintf("errUnchecked at a frame of type %d", typ)
			case err == ErrRapidReset && typ != frameRSTStream:
				return fmt.Sprintf("ErrRapidReset at a frame of type %d", typ)
			}
			return ""
		}
		length := frameLen(in[pos:])
		end := min(pos+frameHeaderLen+length, len(in))
		if len(out) < end && len(out) > pos && err != io.EOF {
			return fmt.Sprintf("output ends inside the frame at %d", pos)
		}
		o, i := out[pos:min(end, len(out))], in[pos:end]
		held := in[pos+3] == frameSettings && in[pos+4]&flagAck == 0 && length <= maxHeld &&
			end == pos+frameHeaderLen+length
		if !held {
			if !bytes.Equal(o, i) {
				return fmt.Sprintf("frame at %d changed", pos)
			}
		} else if msg := checkSettings(i[frameHeaderLen:], o[frameHeaderLen:]); msg != "" {
			return fmt.Sprintf("SETTINGS at %d: %s", pos, msg)
		} else if !bytes.Equal(o[:frameHeaderLen], i[:frameHeaderLen]) {
			return fmt.Sprintf("SETTINGS header at %d changed", pos)
		}
		pos = end
	}
	if !bytes.Equal(out[min(pos, len(out)):], in[min(pos, len(out)):len(out)]) {
		return "trailing partial frame header changed"
	}
	if err != io.EOF && pos < len(out) {
		return "error after the last frame"
	}
	return ""
}

func frameLen(h []byte) int { return int(h[0])<<16 | int(h[1])<<8 | int(h[2]) }

// checkSettings checks out is in with all but the last occurrence of
// each parameter renamed to ids that are unknown and not in the frame,
// or in unchanged when it has more than maxSettings entries.
func checkSettings(in, out []byte) string {
	n := len(in) / 6
	if !bytes.Equal(in[6*n:], out[6*n:]) {
		return "trailing bytes changed"
	}
	if n > maxSettings {
		if !bytes.Equal(in, out) {
			return "large frame changed"
		}
		return ""
	}
	inIDs := map[uint16]bool{}
	for i := range n {
		inIDs[settingID(in, i)] = true
	}
	outIDs := map[uint16]bool{}
	for i := range n {
		if !bytes.Equal(in[6*i+2:6*i+6], out[6*i+2:6*i+6]) {
			return fmt.Sprintf("value %d changed", i)
		}
		id, oid := settingID(in, i), settingID(out, i)
		if outIDs[oid] {
			return fmt.Sprintf("id %#x repeated in the output", oid)
		}
		outIDs[oid] = true
		repeated := false
		for j := i + 1; j < n; j++ {
			repeated = repeated || settingID(in, j) == id
		}
		switch {
		case repeated && (oid < unknownSettingBase || inIDs[oid]):
			return fmt.Sprintf("entry %d (%#x, repeated later) renamed to %#x", i, id, oid)
		case !repeated && oid != id:
			return fmt.Sprintf("last entry %d of %#x renamed to %#x", i, id, oid)
		}
	}
	return ""
}
