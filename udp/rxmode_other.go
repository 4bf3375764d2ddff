//go:build !linux

package udp

import (
	"errors"
	"fmt"
	"runtime"
)

// initRecvModes: kernel timestamps and busy polling are Linux only. Without
// timestamps RecvStamps returns 0; busy polling, asked for, fails the open.
func (c *Conn) initRecvModes(o Options) error {
	if o.BusyPoll {
		return fmt.Errorf("udp: Options.BusyPoll: %w on %s", errors.ErrUnsupported, runtime.GOOS)
	}
	return nil
}

// recvStamps is never called: Timestamps is false here.
func (c *Conn) recvStamps(dst []int64) int { return 0 }
