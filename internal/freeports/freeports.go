// Package freeports finds ports for tests of a server's --data-ports: a run of
// consecutive loopback ports free now for both TCP and UDP. Tests only; it imports
// nothing but the standard library.
package freeports

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Range returns the first and last of n consecutive ports of 127.0.0.1 that are free
// now for TCP and for UDP, from 20000-29999: below Linux's ephemeral range, so the
// kernel hands none of them out meanwhile. It skips tb when 50 tries found none.
func Range(tb testing.TB, n int) (lo, hi uint16) {
	tb.Helper()
	for range 50 {
		first := 20000 + rand.IntN(10000-n)
		if free(first, n) {
			return uint16(first), uint16(first + n - 1)
		}
	}
	tb.Skipf("no %d consecutive free ports found in 20000-29999", n)
	return 0, 0
}

// free reports whether ports first..first+n-1 can each be bound for TCP and UDP.
func free(first, n int) bool {
	for p := first; p < first+n; p++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			return false
		}
		ln.Close()
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}
