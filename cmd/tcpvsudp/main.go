// Command tcpvsudp runs the same workloads over TCP and UDP, side by side, and
// reports in measured numbers how the two differ.
//
//	tcpvsudp                 the default suite on loopback (= tcpvsudp run)
//	tcpvsudp run --quick     a shorter suite
//	tcpvsudp report FILE     render a saved report.json again
//	tcpvsudp serve           a server other hosts may test against (remote mode)
//
// Results go to stdout and to results/report.{json,md}; progress, warnings and
// errors go to stderr. Exit status: 0 done, 1 failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks for a clean stop (the run writes what it measured); after
	// it, the signals take their default action again, so a second one ends the
	// process at once, whatever call it is blocked in. serve counts its own signals
	// and keeps them.
	ctxwatch.OnDone(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcpvsudp: %s\n", remote.Printable(err.Error())) // it may quote a server's words
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// run is the whole command, testable: args without the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(ctx, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
