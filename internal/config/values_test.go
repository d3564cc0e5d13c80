package config

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "50ms", want: 50 * time.Millisecond},
		{in: "3s", want: 3 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0s", want: 0},
		{in: "0", want: 0},
		{in: "", want: 0},
		{in: " 2s ", want: 2 * time.Second},
		{in: "-1s", wantErr: true},
		{in: "5", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "3 s", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseDuration(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got.Std() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "512B", want: 512},
		{in: "512", want: 512},
		{in: "0", want: 0},
		{in: "512KB", want: 512 << 10},
		{in: "1MB", want: 1 << 20},
		{in: "10MB", want: 10 << 20},
		{in: "1GB", want: 1 << 30},
		{in: "2TB", want: 2 << 40},
		{in: "1kb", want: 1 << 10},
		{in: "1KiB", want: 1 << 10},
		{in: "2 MiB", want: 2 << 20},
		{in: "3gib", want: 3 << 30},
		{in: "4K", want: 4 << 10},
		{in: " 64KB ", want: 64 << 10},
		{in: "-1", wantErr: true},
		{in: "1.5MB", wantErr: true},
		{in: "10XB", wantErr: true},
		{in: "MB", wantErr: true},
		{in: "", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
		{in: "9000000TB", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSize(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got.Bytes() != tt.want {
			t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got.Bytes(), tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{64 << 10, "64KB"},
		{1 << 20, "1MB"},
		{3 << 30, "3GB"},
		{1<<20 + 1, "1048577B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestValueJSONRoundTrip(t *testing.T) {
	t.Parallel()
	type doc struct {
		D Duration `json:"d"`
		S Size     `json:"s"`
		X Scalar   `json:"x"`
	}
	tests := []struct {
		in      string
		want    doc
		wantOut string
		wantErr bool
	}{
		{in: `{"d":"90s","s":"1MB","x":502}`, want: doc{Duration(90 * time.Second), 1 << 20, "502"}, wantOut: `{"d":"1m30s","s":1048576,"x":"502"}`},
		{in: `{"d":0,"s":1024,"x":"5xx"}`, want: doc{0, 1024, "5xx"}, wantOut: `{"d":"0s","s":1024,"x":"5xx"}`},
		{in: `{"d":"-1s"}`, wantErr: true},
		{in: `{"d":5}`, wantErr: true},
		{in: `{"s":-1}`, wantErr: true},
		{in: `{"s":"1.5MB"}`, wantErr: true},
		{in: `{"x":[1]}`, wantErr: true},
	}
	for _, tt := range tests {
		var got doc
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr {
			t.Errorf("json.Unmarshal(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if got != tt.want {
			t.Errorf("json.Unmarshal(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
		out, err := json.Marshal(got)
		if err != nil || string(out) != tt.wantOut {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", got, out, err, tt.wantOut)
		}
	}
}

func TestParseStatusRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		lo, hi  int
		wantErr bool
	}{
		{in: "200", lo: 200, hi: 200},
		{in: "200-399", lo: 200, hi: 399},
		{in: "100-599", lo: 100, hi: 599},
		{in: "399-200", wantErr: true},
		{in: "99", wantErr: true},
		{in: "200-600", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "200-", wantErr: true},
	}
	for _, tt := range tests {
		lo, hi, err := ParseStatusRange(tt.in)
		if (err != nil) != tt.wantErr || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParseStatusRange(%q) = %d, %d, %v; want %d, %d, error %v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.wantErr)
		}
	}
}

func TestClassifyHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want HostKind
	}{
		{"", HostAny},
		{"api.example.com", HostExact},
		{"*.example.com", HostWildcard},
		{`.*\.example\.com`, HostRegex},
		{"api.*.com", HostRegex},
		{"(a|b).example.com", HostRegex},
		{"^api$", HostRegex},
		{"a+.example.com", HostRegex},
		{"10.0.0.1", HostExact},
	}
	for _, tt := range tests {
		if got := ClassifyHost(tt.in); got != tt.want {
			t.Errorf("ClassifyHost(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPathMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r        Route
		wantKind PathKind
		wantVal  string
	}{
		{Route{}, PathAny, ""},
		{Route{Path: "/a"}, PathExact, "/a"},
		{Route{PathPrefix: "/p/"}, PathPrefix, "/p/"},
		{Route{PathRegex: "/r.*"}, PathRegex, "/r.*"},
	}
	for _, tt := range tests {
		k, v := tt.r.PathMatch()
		if k != tt.wantKind || v != tt.wantVal {
			t.Errorf("%+v.PathMatch() = %v, %q; want %v, %q", tt.r, k, v, tt.wantKind, tt.wantVal)
		}
	}
}

func TestCheckRetryOn(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"connect_failure", "reset", "timeout", "502", "100", "599", "5xx", "4xx"} {
		if err := checkRetryOn(ok); err != nil {
			t.Errorf("checkRetryOn(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "600", "99", "0502", "6xx", "5XX", "reset ", "gateway"} {
		if err := checkRetryOn(bad); err == nil {
			t.Errorf("checkRetryOn(%q) = nil, want an error", bad)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	var err error = Errors{{Path: "routes[0].id", Message: "required"}, {Message: "yaml: bad"}}
	if got, want := err.Error(), "routes[0].id: required; yaml: bad"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Errorf("errors.As(%v, &Errors) = %v with %d errors, want true with 2", err, errors.As(err, &es), len(es))
	}
	if (Errors{}).err() != nil {
		t.Errorf("Errors{}.err() != nil, want nil")
	}
}

func TestRedactedHeaders(t *testing.T) {
	t.Parallel()
	l := Logging{RedactHeaders: []string{"x-api-key", "cookie"}}
	got := l.RedactedHeaders()
	want := []string{"Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie", "X-Api-Key"}
	if len(got) != len(want) {
		t.Fatalf("RedactedHeaders() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("RedactedHeaders() = %v, want %v", got, want)
		}
	}
}
