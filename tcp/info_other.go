//go:build !linux

package tcp

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// getInfo is not implemented outside Linux.
func getInfo(*net.TCPConn) (Info, error) {
	return Info{}, fmt.Errorf("getsockopt TCP_INFO: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
