//go:build !linux

package tcp

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

// getInfo is not implemented outside Linux.
func getInfo(syscall.Conn) (Info, error) {
	return Info{}, fmt.Errorf("getsockopt TCP_INFO: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
