//go:build !linux

package tcp

import "net"

// newVecReader: no vectored reads here; a direct read takes the frame's body alone,
// and its next length prefix comes with a read of its own.
func newVecReader(c *net.TCPConn) vectorReader { return nil }
