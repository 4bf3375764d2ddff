//go:build !linux

package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
)

// listenMulticast is Linux only: the receiver relies on IP_MULTICAST_ALL.
func listenMulticast(group netip.AddrPort, join bool) (*net.UDPConn, error) {
	return nil, fmt.Errorf("udp: listen on group %v: %w on %s", group, errors.ErrUnsupported, runtime.GOOS)
}

// dialMulticast is Linux only, like listenMulticast.
func dialMulticast(ctx context.Context, group netip.AddrPort) (*net.UDPConn, error) {
	return nil, fmt.Errorf("udp: dial group %v: %w on %s", group, errors.ErrUnsupported, runtime.GOOS)
}

// sendHint leaves err as it is: no host diagnosis here.
func sendHint(err error) error { return err }
