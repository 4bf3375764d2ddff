//go:build !linux

package tcp

import (
	"io"
	"net"
)

// busyPollSupported: Options.BusyPoll is Linux only; resolve refuses it here.
const busyPollSupported = false

// newSpinReader is never called here (resolve refuses Options.BusyPoll).
func newSpinReader(c *net.TCPConn) (io.Reader, int) { return c, 0 }
