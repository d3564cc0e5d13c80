package httpwire

import (
	"net/http"
	"sync/atomic"
	"time"
)

// DateCache holds the Date field (RFC 9110 6.6.1, IMF-fixdate) for the
// current second, for the proxy's HTTP/1.1 and HTTP/2 servers. It is
// refreshed lazily by whichever response first notices a new second, so
// no goroutine ticks in the background. The zero value is ready to use;
// it is safe for concurrent use (the one stateful thing in this package).
type DateCache struct {
	v atomic.Pointer[dateEntry]
}

type dateEntry struct {
	unix  int64
	value string // "Mon, 02 Jan 2006 15:04:05 GMT"
	line  []byte // "Date: <value>\r\n"
}

// Value returns the field value for now.
func (d *DateCache) Value(now time.Time) string { return d.entry(now).value }

// Line returns the HTTP/1 field line for now, CRLF included. The slice is
// shared and must not be modified.
func (d *DateCache) Line(now time.Time) []byte { return d.entry(now).line }

func (d *DateCache) entry(now time.Time) *dateEntry {
	sec := now.Unix()
	if e := d.v.Load(); e != nil && e.unix == sec {
		return e
	}
	line := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	line = append(line, "Date: "...)
	line = now.UTC().AppendFormat(line, http.TimeFormat)
	e := &dateEntry{unix: sec, value: string(line[len("Date: "):]), line: append(line, "\r\n"...)}
	d.v.Store(e)
	return e
}
