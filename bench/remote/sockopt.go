package remote

import (
	"errors"
	"fmt"
	"syscall"
)

// Socket options on an open data path: an experiment that sizes its buffers (a slow
// receiver's small receive buffer) or reads kernel counters (receive-buffer drops,
// TCP_INFO) reaches the data path's sockets through these, and only through them:
// data still goes through Send and Write, paced and checked.

// errNoSocket reports a data path without a kernel socket under it.
var errNoSocket = fmt.Errorf("remote: no socket under the data path: %w", errors.ErrUnsupported)

// SyscallConn is the TCP data connection's socket, for socket options (buffer sizes,
// TCP_INFO): bytes written through it would bypass the pacing, so write through the
// connection, never through this.
func (c *pacedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoSocket
}

// SetBuffers asks the kernel for recv bytes of SO_RCVBUF and send bytes of SO_SNDBUF
// on the path's socket; 0 leaves that one as it is. Read the grant back with
// BufferSizes.
func (p *UDPPath) SetBuffers(recv, send int) error {
	if recv < 0 || send < 0 {
		return fmt.Errorf("remote: udp path to %v: buffer sizes must be >= 0 bytes, got %d, %d", p.peer, recv, send)
	}
	if recv > 0 {
		if err := p.conn.SetReadBuffer(recv); err != nil {
			return fmt.Errorf("remote: udp path to %v: receive buffer: %w", p.peer, err)
		}
	}
	if send > 0 {
		if err := p.conn.SetWriteBuffer(send); err != nil {
			return fmt.Errorf("remote: udp path to %v: send buffer: %w", p.peer, err)
		}
	}
	return nil
}

// BufferSizes reads back the socket's receive and send buffer sizes, in bytes, as the
// kernel granted them. It needs the path's batched socket (Linux, or a client's
// connected socket); elsewhere it returns an error wrapping errors.ErrUnsupported.
func (p *UDPPath) BufferSizes() (recv, send int, err error) {
	bc := p.batcher()
	if bc == nil {
		return 0, 0, fmt.Errorf("remote: udp path to %v: buffer sizes: %w", p.peer, errNoSocket)
	}
	return bc.BufferSizes()
}

// RecvQueued is the bytes waiting in the socket's receive queue, as
// udp.Conn.RecvQueued reads them.
func (p *UDPPath) RecvQueued() (int, error) {
	bc := p.batcher()
	if bc == nil {
		return 0, fmt.Errorf("remote: udp path to %v: receive queue: %w", p.peer, errNoSocket)
	}
	return bc.RecvQueued()
}

// RecvDrops is how many datagrams the kernel dropped because the socket's receive
// buffer was full, since the socket opened (SO_MEMINFO), as udp.Conn.RecvDrops reads
// it. It needs the path's batched socket, as BufferSizes does.
func (p *UDPPath) RecvDrops() (uint64, error) {
	bc := p.batcher()
	if bc == nil {
		return 0, fmt.Errorf("remote: udp path to %v: receive drops: %w", p.peer, errNoSocket)
	}
	return bc.RecvDrops()
}

// SendCalls is how many system calls the path's sends made and how many datagrams
// they carried (udp.Conn.SendCalls on the batched socket, plus one per datagram sent
// unbatched); data datagrams only, not the setup's probes and challenges.
func (p *UDPPath) SendCalls() (calls, datagrams uint64) {
	n := p.sendCalls.Load()
	calls, datagrams = n, n
	if bc := p.batcher(); bc != nil {
		c, d := bc.SendCalls()
		calls, datagrams = calls+c, datagrams+d
	}
	return calls, datagrams
}

// Batch is the most datagrams one send or receive call of the path moves: the
// test's SocketOptions.Batch on the batched socket, 1 without it.
func (p *UDPPath) Batch() int {
	if p.batcher() == nil {
		return 1
	}
	return len(p.rsizes)
}

// Offload reports the segmentation offloads of the path's batched socket
// (udp.Conn.Offload); both false without it.
func (p *UDPPath) Offload() (gso, gro bool) {
	if bc := p.batcher(); bc != nil {
		return bc.Offload()
	}
	return false, false
}

// Timestamps reports whether the kernel stamps the datagrams the path receives
// (udp.Conn.Timestamps); false without the batched socket.
func (p *UDPPath) Timestamps() bool {
	if bc := p.batcher(); bc != nil {
		return bc.Timestamps()
	}
	return false
}

// BusyPoll reports how the path's receives wait (udp.Conn.BusyPoll): spinning, and
// the SO_BUSY_POLL the kernel granted, µs; false and 0 without the batched socket.
func (p *UDPPath) BusyPoll() (spin bool, kernelUs int) {
	if bc := p.batcher(); bc != nil {
		return bc.BusyPoll()
	}
	return false, 0
}
