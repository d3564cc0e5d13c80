package main

import (
	"fmt"
	"io"
)

// runAudit implements "proxy audit verify FILE".
func runAudit(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "proxy audit: not supported yet in this release")
	return 2
}
