//go:build ignore

// notls.go - a Go program without crypto/tls, for test_probe_gofind.c:
// tt_gofind must answer 0 ("a Go program without crypto/tls").
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stdout, "no TLS here:", len(os.Args))
}
