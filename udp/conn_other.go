//go:build !linux

package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
)

// A peerAddr is the source of a received datagram.
type peerAddr struct{ ap netip.AddrPort }

func (p *peerAddr) addrPort() netip.AddrPort { return p.ap }

// sysConn is the portable part of a Conn: one datagram per system call through the
// net package. scratch receives each datagram whole (no system truncates a datagram
// into a 64 KiB buffer), so a datagram too large for the caller's buffer is detected
// the same way everywhere.
type sysConn struct {
	scratch []byte      // owned by the goroutine in Recv
	src     [1]peerAddr // owned by the goroutine in Recv
}

func (c *Conn) initSys() error {
	c.sys.scratch = make([]byte, 1<<16)
	return nil
}

func (c *Conn) recv(bufs [][]byte, sizes []int) (int, error) {
	n, ap, err := c.uc.ReadFromUDPAddrPort(c.sys.scratch)
	if err != nil {
		return 0, c.recvErr(unwrapOp(err))
	}
	if n > len(bufs[0]) {
		if !c.connected {
			c.setPeers(nil)
		}
		return 0, c.recvErr(fmt.Errorf("%w: message 0 is %d bytes, its buffer %d bytes", ErrTruncated, n, len(bufs[0])))
	}
	sizes[0] = copy(bufs[0], c.sys.scratch[:n])
	if !c.connected {
		c.sys.src[0].ap = ap
		c.setPeers(c.sys.src[:])
	}
	return 1, nil
}

// recvViews returns one datagram per call, a view into the scratch buffer.
func (c *Conn) recvViews(views [][]byte, pkts []Packet) (int, int, error) {
	n, ap, err := c.uc.ReadFromUDPAddrPort(c.sys.scratch)
	if err != nil {
		return 0, 0, c.recvErr(unwrapOp(err))
	}
	views[0] = c.sys.scratch[:n:n]
	pkts[0] = Packet{Datagrams: 1}
	if !c.connected {
		c.sys.src[0].ap = ap
		c.setPeers(c.sys.src[:])
	}
	return 1, 1, nil
}

func (c *Conn) recvErr(err error) error {
	if c.connected {
		return fmt.Errorf("udp: recvfrom %v: %w", c.raddr, err)
	}
	return fmt.Errorf("udp: recvfrom on %v: %w", c.laddr, err)
}

func (c *Conn) send(msgs [][]byte) (int, error) {
	if c.connected {
		for i, m := range msgs {
			if _, err := c.uc.Write(m); err != nil {
				return i, c.sendErr(c.raddr, err)
			}
			c.sendCalls.Add(1)
			c.sentDgrams.Add(1)
		}
		return len(msgs), nil
	}
	c.peerMu.Lock()
	np := c.npeers
	var dst peerAddr
	if np > 0 {
		dst = c.peers[0]
	}
	c.peerMu.Unlock()
	sent := 0
	for i, m := range msgs {
		if i >= np {
			return sent, fmt.Errorf("udp: sendto on %v: %w: message %d, the last Recv returned %d", c.laddr, ErrNoPeer, i, np)
		}
		if _, err := c.uc.WriteToUDPAddrPort(m, dst.ap); err != nil {
			return sent, c.sendErr(dst.ap, err)
		}
		c.sendCalls.Add(1)
		c.sentDgrams.Add(1)
		sent++
	}
	return sent, nil
}

func (c *Conn) sendErr(peer any, err error) error {
	err = unwrapOp(err)
	if !errors.Is(err, net.ErrClosed) {
		c.sendErrs.Add(1)
	}
	return fmt.Errorf("udp: sendto %v: %w", peer, err)
}

func (c *Conn) recvQueued() (int, error) {
	return 0, fmt.Errorf("udp: SO_MEMINFO: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

func (c *Conn) recvDrops() (uint64, error) {
	return 0, fmt.Errorf("udp: SO_MEMINFO: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
