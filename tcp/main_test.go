package tcp

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// TestMain ends the package's tests with a leak check: every goroutine a test
// started must be gone once the tests are.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if fuzz := flag.Lookup("test.fuzz"); code == 0 && (fuzz == nil || fuzz.Value.String() == "") {
		if err := checkGoroutines(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines waits up to timeout for the goroutine count to fall back to want.
func checkGoroutines(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := runtime.NumGoroutine()
		if got <= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tcp tests: leaked goroutines: %d running after the tests, %d before", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
