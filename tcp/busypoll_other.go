//go:build !linux

package tcp

import (
	"io"
	"syscall"
)

// busyPollSupported: Options.BusyPoll is Linux only; resolve refuses it here.
const busyPollSupported = false

// newSpinReader is never called here (resolve refuses Options.BusyPoll).
func newSpinReader(c syscall.Conn) (io.Reader, int) { return nil, 0 }
