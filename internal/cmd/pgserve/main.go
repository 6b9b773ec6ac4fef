// Command pgserve runs a throwaway PostgreSQL (package pgserver) until it is
// interrupted, for scripts that need a server they did not start
// themselves: .ci/run points FIBERDB_TEST_DATABASE_URL at one. It prints the
// superuser URL on one line of standard output once the server accepts
// connections, and removes the server on SIGINT or SIGTERM.
//
//	go build -o pgserve ./internal/cmd/pgserve && ./pgserve > url &
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fiberdb/fiberdb/pgserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	pg, err := pgserver.Start(startCtx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Println(pg.URL())
	<-ctx.Done()
	return pg.Close()
}
