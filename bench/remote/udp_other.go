//go:build !linux

package remote

import (
	"net"
	"net/netip"
)

// connectUDP does nothing here: the socket stays unconnected, UDPPath still drops
// datagrams from other addresses itself, and a lost peer is noticed by its missing
// heartbeats alone (no ICMP unreachable is reported on an unconnected socket).
func connectUDP(c *net.UDPConn, peer netip.AddrPort) error { return nil }
