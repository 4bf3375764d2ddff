//go:build !linux

package tcp

import (
	"syscall"
	"time"
)

// blockingSupported: elsewhere Options.Blocking keeps the poller's path (Recv parks
// in Go's poller), and RecvMode says "poller".
const blockingSupported = false

// blockingReader is never made here.
type blockingReader struct{}

func newBlockingReader(c syscall.Conn) *blockingReader { return nil }
func (b *blockingReader) Read(p []byte) (int, error)   { return 0, nil }
func (b *blockingReader) setDeadline(t time.Time)      {}
func (b *blockingReader) close()                       {}
