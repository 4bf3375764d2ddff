// Package leakcheck ends a package's tests with a goroutine leak check: every
// goroutine the tests started must be gone once they are. Tests only; it imports
// nothing but the standard library.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests and, when they pass, fails the package if goroutines other than
// the runtime's and the testing package's are still running after timeout.
// Use it as TestMain: func TestMain(m *testing.M) { leakcheck.Main(m, "udp") }.
func Main(m *testing.M, pkg string) {
	code := m.Run()
	if code == 0 {
		if err := Check(5 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "%s tests: %v\n", pkg, err)
			code = 1
		}
	}
	os.Exit(code)
}

// notLeaks are goroutines the runtime and the testing package keep on purpose.
var notLeaks = []string{
	"os/signal.loop",     // signal handling (fuzzing, signal.Notify)
	"testing.(*M).Run",   // the caller
	"testing.runFuzzing", // the fuzzing coordinator, on its way out
}

// Check waits up to timeout for every goroutine but the caller's and notLeaks to end.
func Check(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		leaked := leaked()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked %d goroutines:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, bounded by timeout
	}
}

func leaked() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // this goroutine
			continue
		}
		ignore := strings.TrimSpace(g) == ""
		for _, s := range notLeaks {
			ignore = ignore || strings.Contains(g, s)
		}
		if !ignore {
			out = append(out, g)
		}
	}
	return out
}
