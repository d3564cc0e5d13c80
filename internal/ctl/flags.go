package ctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Defaults of the common flags.
const (
	defaultAdminURL = "http://127.0.0.1:9000"
	defaultTimeout  = 30 * time.Second
)

// common holds the flags every command takes. They may come before the
// command name (proxy ctl -o json status) or among the command's flags
// (proxy ctl status -o json); the later one wins.
type common struct {
	adminURL string
	token    string
	cacert   string
	cert     string
	key      string
	output   string
	timeout  time.Duration

	// set records the flags given on the command line, so that a flag
	// beats its environment variable even when given as "".
	set map[string]bool
}

// register adds the common flags to fs. They are flag.Func values with
// no default of their own: registering on two FlagSets must not reset
// what the first one parsed, and a default taken from the environment
// must never show up in -h output (it would print the token).
func (c *common) register(fs *flag.FlagSet) {
	if c.set == nil {
		c.set = make(map[string]bool)
	}
	str := func(name string, dst *string, usage string) {
		fs.Func(name, usage, func(s string) error {
			*dst, c.set[name] = s, true
			return nil
		})
	}
	str("admin-url", &c.adminURL, "admin API base `URL` (default "+defaultAdminURL+") [env PROXY_ADMIN_URL]")
	str("token", &c.token, "admin bearer `token` (default from env ADMIN_TOKEN); never printed")
	str("cacert", &c.cacert, "PEM CA bundle `file` to verify the admin server's certificate with, instead of the system roots (https only)")
	str("cert", &c.cert, "PEM client certificate `file` for admin mTLS (with -key, https only)")
	str("key", &c.key, "PEM private key `file` of -cert")
	str("o", &c.output, "output `format`: text, or json for the server's answer as received (default text)")
	fs.Func("timeout", "time limit for the whole command, a `duration` like 5s (default 30s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		c.timeout, c.set["timeout"] = d, true
		return nil
	})
}

// resolve fills what the command line left unset from the environment
// and the defaults, and checks -o.
func (c *common) resolve(getenv func(string) string) error {
	if !c.set["admin-url"] {
		c.adminURL = getenv("PROXY_ADMIN_URL")
	}
	if c.adminURL == "" {
		c.adminURL = defaultAdminURL
	}
	if !c.set["token"] {
		c.token = getenv("ADMIN_TOKEN")
	}
	if c.output == "" {
		c.output = "text"
	}
	if c.output != "text" && c.output != "json" {
		return &UsageError{fmt.Sprintf("bad -o %q: want text or json", c.output)}
	}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	return nil
}

func (c *common) config() Config {
	return Config{URL: c.adminURL, Token: c.token, CACert: c.cacert, Cert: c.cert, Key: c.key}
}

// parseInterspersed parses args with fs, letting flags follow positional
// arguments (proxy ctl apply cfg.yaml -o json), which the flag package
// alone does not. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// headerFlags is the repeatable -H 'Name: value' flag of explain.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

// Set checks the header's shape now, so a typo is a usage error (exit 2)
// instead of a confusing "no route" from the server.
func (h *headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	// The value's leading and trailing whitespace is not part of it (RFC
	// 9110 section 5.5), so "Name: v" and "Name:v" explain the same.
	*h = append(*h, name+":"+strings.TrimSpace(value))
	return nil
}

// newFlagSet returns a FlagSet that prints nothing itself: Run prints
// help to stdout (it was asked for) and errors to stderr, once, in its own
// one-line form.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}
