package tcp

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sysctlInt reads an integer from /proc/sys, skipping the test if it cannot.
func sysctlInt(tb testing.TB, path string) int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Skipf("tcp: cannot read the kernel's cap: %v", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return v
}

func TestBufferSizes(t *testing.T) {
	rmax := sysctlInt(t, "/proc/sys/net/core/rmem_max")
	wmax := sysctlInt(t, "/proc/sys/net/core/wmem_max")
	const recvReq, sendReq = 96 << 10, 48 << 10
	o := Options{RecvBuffer: recvReq, SendBuffer: sendReq}
	client, server := loopbackPairWith(t, o, o)
	// Linux doubles the request (for its bookkeeping) after capping it at the sysctl.
	wantRecv, wantSend := 2*min(recvReq, rmax), 2*min(sendReq, wmax)
	for _, c := range []struct {
		name string
		conn *Conn
	}{{"dialled", client}, {"accepted", server}} {
		recv, send, err := c.conn.BufferSizes()
		if err != nil {
			t.Fatal(err)
		}
		if recv != wantRecv || send != wantSend {
			t.Errorf("%s: got (recv %d, send %d), want (%d, %d)", c.name, recv, send, wantRecv, wantSend)
		}
	}
}

func TestNoDelay(t *testing.T) {
	for _, noDelay := range []bool{false, true} {
		o := Options{NoDelay: noDelay}
		client, server := loopbackPairWith(t, o, o)
		for _, c := range []*Conn{client, server} {
			rc, err := c.NetConn().SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var v int
			cerr := rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) })
			if cerr != nil || err != nil {
				t.Fatal(cerr, err)
			}
			if got := v != 0; got != noDelay {
				t.Errorf("Options{NoDelay: %v}: TCP_NODELAY on %v is %v", noDelay, c.LocalAddr(), got)
			}
		}
	}
}
