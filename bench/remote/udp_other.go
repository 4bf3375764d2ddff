//go:build !linux

package remote

import (
	"net"
	"net/netip"
)

// kernelConnects: the server's socket stays unconnected here, so UDPPath checks
// every source itself, one datagram per call.
const kernelConnects = false

// connectUDP does nothing here: the socket stays unconnected, UDPPath still drops
// datagrams from other addresses itself, and a lost peer is noticed by its missing
// heartbeats alone (no ICMP unreachable is reported on an unconnected socket).
func connectUDP(c *net.UDPConn, peer netip.AddrPort) error { return nil }
