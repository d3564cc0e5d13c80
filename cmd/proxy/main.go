// Command proxy is the keel reverse proxy: the server (the bare binary),
// plus the demo and operator subcommands of SPEC section 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches subcommands and returns the exit code; main is the only
// place that exits.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(args[1:], stdout, stderr)
		case "ctl":
			return runCtl(args[1:], stdout, stderr)
		case "audit":
			return runAudit(args[1:], stdout, stderr)
		case "bundle", "rollout":
			fmt.Fprintf(stderr, "proxy %s: not supported yet in this release\n", args[0])
			return 2
		case "help", "-h", "-help", "--help":
			usage(stderr, newFlags(io.Discard))
			return 0
		}
	}
	fs := newFlags(stderr)
	if err := fs.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	if fs.validate {
		return validateFile(fs.configFile, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, fs.options(), stdout, stderr, nil); err != nil {
		fmt.Fprintln(stderr, "proxy:", err)
		return 1
	}
	return 0
}

func usage(w io.Writer, fs *flags) {
	fmt.Fprint(w, `Usage:
  proxy [flags]                 run the proxy
  proxy -validate -config-file F
  proxy demo [-http-addr A] [-admin-addr A]
  proxy ctl validate|diff|apply|rollback|status|versions|explain [flags] [FILE]
  proxy audit verify FILE

Flags:
`)
	fs.fs.SetOutput(w)
	fs.fs.PrintDefaults()
}
