package tcp

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// wrapped is a net.Conn that is not a *net.TCPConn but has its socket, as remote
// mode's paced data connections do.
type wrapped struct{ *net.TCPConn }

func (w wrapped) SyscallConn() (syscall.RawConn, error) { return w.TCPConn.SyscallConn() }

// TestSetBuffersOpen: buffers set on an open connection read back doubled (below
// the sysctl caps), also through a wrapper that has the socket; Info works there too.
func TestSetBuffersOpen(t *testing.T) {
	rmax := sysctlInt(t, "/proc/sys/net/core/rmem_max")
	wmax := sysctlInt(t, "/proc/sys/net/core/wmem_max")
	client, server := loopbackPair(t)
	framed, err := Frame(struct{ wrapped }{wrapped{server.NetConn()}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		conn       *Conn
		recv, send int
	}{{"dialled", client, 40 << 10, 24 << 10}, {"framed wrapper", framed, 56 << 10, 0}} {
		_, send0, err := tc.conn.BufferSizes()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := tc.conn.SetBuffers(tc.recv, tc.send); err != nil {
			t.Fatalf("%s: SetBuffers: %v", tc.name, err)
		}
		recv, send, err := tc.conn.BufferSizes()
		wantSend := send0 // 0 leaves it
		if tc.send > 0 {
			wantSend = 2 * min(tc.send, wmax)
		}
		if err != nil || recv != 2*min(tc.recv, rmax) || send != wantSend {
			t.Errorf("%s: SetBuffers(%d, %d) read back (%d, %d, %v), want (%d, %d)", tc.name, tc.recv, tc.send, recv, send, err, 2*min(tc.recv, rmax), wantSend)
		}
		if _, err := tc.conn.Info(); err != nil {
			t.Errorf("%s: Info: %v", tc.name, err)
		}
	}
	if err := client.SetBuffers(-1, 0); err == nil || !strings.Contains(err.Error(), "got -1") {
		t.Errorf("SetBuffers(-1, 0) = %v, want the size refused", err)
	}
}
