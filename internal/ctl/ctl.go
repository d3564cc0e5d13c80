// Package ctl is "proxy ctl", the operator CLI over the admin API (SPEC
// sections 2 and 8): validate, diff, apply and roll back configs, and
// show status, versions and how a request would be routed.
//
// It speaks to the proxy only over HTTP, so it imports no other internal
// package: what it knows of the API is the JSON shapes of SPEC section 8,
// and the server stays the authority on what a valid config is.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Exit codes of SPEC section 2.
const (
	ExitOK     = 0 // the action succeeded
	ExitFailed = 1 // the action was rejected or failed (invalid config, 409, 4xx/5xx, unreachable)
	ExitUsage  = 2 // bad usage: unknown command, bad flag, missing argument
)

// Env is what a command line runs with. Getenv nil means no environment
// (tests pass their own instead of touching the process's).
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// command is one subcommand: its help and how to set it up.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	nargs   int // positional arguments it takes: 0, or 1 for FILE
	// setup registers the command's own flags on fs and returns the
	// action, which runs after parsing with the positional arguments.
	setup func(fs *flag.FlagSet) action
}

type action func(ctx context.Context, s *session, args []string) error

// commands in the order of the help text.
var commands = []command{
	{"validate", "[-format yaml|json] FILE", "ask the server whether FILE is a valid config", 1, setupValidate},
	{"diff", "[-format yaml|json] FILE", "show what applying FILE would change", 1, setupDiff},
	{"apply", "[-expected-version V] [-format yaml|json] FILE", "apply FILE; with -expected-version only if V is still active", 1, setupApply},
	{"rollback", "[-to VERSION]", "make VERSION active again (default: the previous version)", 0, setupRollback},
	{"status", "", "show the active version, readiness, route and pool counts, pool health", 0, setupStatus},
	{"versions", "", "list the kept config versions, newest first", 0, setupVersions},
	{"explain", "-host H -path P [-method M] [-H 'Name: value' ...]", "show which route a request would take, and why not the others", 0, setupExplain},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// Run runs one "proxy ctl" command line (args without "proxy ctl") and
// returns its exit code. It never exits the process.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	var c common
	global := newFlagSet("proxy ctl")
	c.register(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Stdout, global)
			return ExitOK
		}
		return usageFailure(env.Stderr, "", err)
	}
	rest := global.Args()
	if len(rest) == 0 {
		printUsage(env.Stderr, global)
		return ExitUsage
	}
	if rest[0] == "help" {
		return help(env, rest[1:], global)
	}
	cmd, ok := lookup(rest[0])
	if !ok {
		return usageFailure(env.Stderr, "", fmt.Errorf("unknown command %q", rest[0]))
	}
	return runCommand(ctx, cmd, rest[1:], &c, env)
}

// runCommand parses the command's flags, builds the client and runs the
// action under the -timeout deadline.
func runCommand(ctx context.Context, cmd command, args []string, c *common, env Env) int {
	fs := newFlagSet("proxy ctl " + cmd.name)
	c.register(fs)
	act := cmd.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(env.Stdout, cmd)
			return ExitOK
		}
		return usageFailure(env.Stderr, cmd.name, err)
	}
	switch {
	case len(pos) < cmd.nargs:
		return usageFailure(env.Stderr, cmd.name, errors.New("missing FILE (use - for stdin)"))
	case len(pos) > cmd.nargs:
		return usageFailure(env.Stderr, cmd.name, fmt.Errorf("unexpected argument %q", pos[cmd.nargs]))
	}
	if err := c.resolve(env.Getenv); err != nil {
		return usageFailure(env.Stderr, cmd.name, err)
	}
	client, err := NewClient(c.config())
	if err != nil {
		return failure(env.Stderr, cmd.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s := &session{client: client, json: c.output == "json", stdin: env.Stdin, stdout: env.Stdout}
	if err := act(ctx, s, pos); err != nil {
		if te := (*TransportError)(nil); errors.As(err, &te) {
			err = errors.New(timeoutMessage(te, c.timeout))
		}
		return failure(env.Stderr, cmd.name, err)
	}
	return ExitOK
}

// help answers "proxy ctl help [command]".
func help(env Env, args []string, global *flag.FlagSet) int {
	if len(args) == 0 {
		printUsage(env.Stdout, global)
		return ExitOK
	}
	cmd, ok := lookup(args[0])
	if !ok {
		return usageFailure(env.Stderr, "", fmt.Errorf("unknown command %q", args[0]))
	}
	printCommandUsage(env.Stdout, cmd)
	return ExitOK
}

// failure prints err as the one-line reason and returns its exit code: 2
// for a *UsageError, else 1.
func failure(stderr io.Writer, cmd string, err error) int {
	if ue := (*UsageError)(nil); errors.As(err, &ue) {
		return usageFailure(stderr, cmd, err)
	}
	fmt.Fprintf(stderr, "proxy ctl: %s\n", oneLine(err.Error()))
	return ExitFailed
}

// oneLine keeps a reason that may quote the server on one line and free
// of terminal control sequences: scripts read stderr line by line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r):
			return '?'
		}
		return r
	}, strings.TrimSpace(s))
}

// usageFailure prints err and where to find the usage, on one line.
func usageFailure(stderr io.Writer, cmd string, err error) int {
	name := "proxy ctl"
	if cmd != "" {
		name += " " + cmd
	}
	fmt.Fprintf(stderr, "%s: %s (see '%s -h')\n", name, err, name)
	return ExitUsage
}

func printUsage(w io.Writer, global *flag.FlagSet) {
	var b strings.Builder
	b.WriteString("Usage: proxy ctl <command> [flags] [FILE]\n\n")
	b.WriteString("The operator CLI over the admin API. Exit status: 0 success, 1 rejected\nor failed action, 2 bad usage.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'proxy ctl <command> -h' for its flags.\n\nCommon flags (before or after the command's own):\n")
	fmt.Fprint(w, b.String())
	printDefaults(w, global)
}

// printCommandUsage prints a command's own flags, then the common ones,
// each set from a fresh FlagSet so defaults show as defaults.
func printCommandUsage(w io.Writer, cmd command) {
	fmt.Fprintf(w, "Usage: proxy ctl %s [common flags] %s\n\n%s.\n", cmd.name, cmd.args, upperFirst(cmd.summary))
	if cmd.nargs > 0 {
		fmt.Fprint(w, "FILE is YAML (.yaml, .yml) or JSON (.json); - reads stdin (YAML unless -format json).\n")
	}
	own := newFlagSet(cmd.name)
	cmd.setup(own)
	if hasFlags(own) {
		fmt.Fprint(w, "\nFlags:\n")
		printDefaults(w, own)
	}
	com := newFlagSet("common")
	new(common).register(com)
	fmt.Fprint(w, "\nCommon flags:\n")
	printDefaults(w, com)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
