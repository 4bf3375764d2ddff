package udp

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if goroutines started by its tests outlive them.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// notLeaks are goroutines the runtime and the testing package keep on purpose.
var notLeaks = []string{
	"os/signal.loop",     // started by the fuzzing engine's signal handling
	"testing.(*M).Run",   // the caller
	"testing.runFuzzing", // the fuzzing coordinator, on its way out
}

// checkLeaks waits up to timeout for every goroutine but this one and notLeaks to end.
func checkLeaks(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		leaked := leakedGoroutines()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("udp tests leaked %d goroutines:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, bounded by timeout
	}
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // this goroutine
			continue
		}
		ignore := false
		for _, s := range notLeaks {
			ignore = ignore || strings.Contains(g, s)
		}
		if !ignore && strings.TrimSpace(g) != "" {
			leaked = append(leaked, g)
		}
	}
	return leaked
}
