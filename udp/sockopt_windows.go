//go:build windows

package udp

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// bufferSizes reads back SO_RCVBUF and SO_SNDBUF, in bytes, as the system granted them.
func bufferSizes(fd uintptr) (recv, send int, err error) {
	recv, rerr := windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF)
	send, serr := windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_SNDBUF)
	if rerr != nil || serr != nil {
		return 0, 0, os.NewSyscallError("getsockopt", errors.Join(rerr, serr))
	}
	return recv, send, nil
}
