package main

import (
	"fmt"
	"io"
)

// runCtl implements "proxy ctl", the operator CLI over the admin API.
func runCtl(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "proxy ctl: not supported yet in this release")
	return 2
}
