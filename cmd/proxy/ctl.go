package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keelproxy/keel/internal/ctl"
)

// runCtl implements "proxy ctl", the operator CLI over the admin API.
// SIGINT and SIGTERM cancel the request in flight, so an interrupted
// command still says what it knows (an apply may have been applied).
func runCtl(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return ctl.Run(ctx, args, ctl.Env{
		Stdin:  os.Stdin,
		Stdout: stdout,
		Stderr: stderr,
		Getenv: os.Getenv,
	})
}
