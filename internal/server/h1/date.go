package h1

import (
	"net/http"
	"sync/atomic"
	"time"
)

// dateCache holds the Date field for the current second. It is refreshed
// lazily by whichever response first notices a new second, so no goroutine
// ticks in the background. The zero value is ready to use and it is safe
// for concurrent use.
type dateCache struct {
	v atomic.Pointer[dateEntry]
}

type dateEntry struct {
	unix  int64
	field []byte // "Date: <IMF-fixdate>\r\n" (RFC 9110 5.6.7, 6.6.1)
}

// field returns the Date field line for now. The slice is shared and
// must not be modified.
func (d *dateCache) field(now time.Time) []byte {
	sec := now.Unix()
	if e := d.v.Load(); e != nil && e.unix == sec {
		return e.field
	}
	b := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	d.v.Store(&dateEntry{unix: sec, field: b})
	return b
}
