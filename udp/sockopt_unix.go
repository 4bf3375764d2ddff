//go:build unix && !linux

package udp

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// bufferSizes reads back SO_RCVBUF and SO_SNDBUF, in bytes, as the kernel granted them.
func bufferSizes(fd uintptr) (recv, send int, err error) {
	recv, rerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	send, serr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	if rerr != nil || serr != nil {
		return 0, 0, os.NewSyscallError("getsockopt", errors.Join(rerr, serr))
	}
	return recv, send, nil
}
