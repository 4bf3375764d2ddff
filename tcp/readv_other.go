//go:build !linux

package tcp

import "syscall"

// newVecReader: no vectored reads here; a direct read takes the frame's body alone,
// and its next length prefix comes with a read of its own.
func newVecReader(c syscall.Conn) vectorReader { return nil }
