//go:build !unix && !windows

package udp

import (
	"errors"
	"fmt"
	"runtime"
)

// bufferSizes cannot read socket options here.
func bufferSizes(fd uintptr) (recv, send int, err error) {
	return 0, 0, fmt.Errorf("getsockopt SO_RCVBUF: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
