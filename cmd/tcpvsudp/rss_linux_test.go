package main

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill the child if the test binary dies first (a
// go test -timeout panic, a kill): nothing outlives the test. The signal is tied
// to the thread that starts the child, which the Go runtime does not end while the
// process lives (no goroutine here locks it).
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
