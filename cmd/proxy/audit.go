package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/keelproxy/keel/internal/audit"
)

const auditUsage = `Usage:
  proxy audit verify FILE

verify checks the hash chain of an audit log written with -audit-file and
names the first broken record. Exit status: 0 intact, 1 broken or
unreadable, 2 bad usage.
`

// runAudit implements "proxy audit verify FILE". The verdict goes to
// stdout, so it can be kept with the file; usage and I/O errors go to
// stderr.
func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := auditFlags("proxy audit", stderr)
	if err := fs.Parse(args); err != nil {
		return auditExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "proxy audit: missing subcommand\n"+auditUsage)
		return 2
	}
	if sub := fs.Arg(0); sub != "verify" {
		fmt.Fprintf(stderr, "proxy audit: unknown subcommand %q\n%s", sub, auditUsage)
		return 2
	}
	return auditVerify(fs.Args()[1:], stdout, stderr)
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := auditFlags("proxy audit verify", stderr)
	if err := fs.Parse(args); err != nil {
		return auditExit(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, "proxy audit verify: want exactly one FILE\n"+auditUsage)
		return 2
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(stderr, "proxy audit verify:", err)
		return 1
	}
	defer f.Close()
	n, err := audit.Verify(f)
	var be *audit.BreakError
	switch {
	case errors.As(err, &be):
		fmt.Fprintf(stdout, "%s: broken at record %d (line %d): %s\n", path, be.Record, be.Line, be.Reason)
		verb := "are"
		if n == 1 {
			verb = "is"
		}
		fmt.Fprintf(stdout, "%s: %s before it %s intact\n", path, auditCount(n), verb)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "proxy audit verify:", err) // err names the file
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s, chain intact\n", path, auditCount(n))
	return 0
}

// auditFlags returns a flag set with no flags: it exists so that -h
// prints the usage and any other flag is a usage error, like the other
// subcommands.
func auditFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	return fs
}

// auditExit maps a flag.Parse error to the exit status: asking for help is
// not a failure.
func auditExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// auditCount says "1 record" or "N records".
func auditCount(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}
