// Command kaginashi is the kaginashi server and its command-line client.
// This file only wires the process to the cli package.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
