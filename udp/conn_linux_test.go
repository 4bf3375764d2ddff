//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestRecvDropsKnownAnswer overflows a small receive buffer with exactly N datagrams
// and checks that every one is accounted for: received + RecvDrops = N.
//
// It sends in two phases, draining between them. During the first, the reader reads
// nothing, so no datagram queues after the first drop and SO_RXQ_OVFL stays 0 although
// drops are many: the kernel behaviour that makes RecvDrops (SO_MEMINFO) the final
// figure. The second phase's datagrams carry the first phase's count.
//
// It runs with the client sending with GSO (the default: the kernel splits each
// super-datagram before the receiving socket queues it, and counts drops per
// datagram) and without (NoGSO). With GRO on the receiver it is not exact: see
// TestGRODropsCountSuperPackets.
func TestRecvDropsKnownAnswer(t *testing.T) {
	for _, mode := range []struct {
		name string
		o    Options
	}{{"gso=on", Options{}}, {"gso=off", Options{NoGSO: true}}} {
		t.Run(mode.name, func(t *testing.T) { testRecvDropsKnownAnswer(t, mode.o) })
	}
}

func testRecvDropsKnownAnswer(t *testing.T, o Options) {
	const n, size, phases = 2000, 1000, 2
	srvOpts := o
	srvOpts.RecvBuffer = 4096
	srv, cli := loopbackPair(t, srvOpts, o)
	if rcv, _, err := srv.BufferSizes(); err != nil || rcv >= 64*size {
		t.Fatalf("server receive buffer = %d bytes, %v; want a small one", rcv, err)
	}
	msgs := make([][]byte, n/phases)
	received := 0
	for phase := range phases {
		for i := range msgs {
			msgs[i] = payload(phase*len(msgs)+i, size)
		}
		if sent, err := cli.Send(msgs); sent != len(msgs) || err != nil {
			t.Fatalf("phase %d: Send(%d) = %d, %v", phase, len(msgs), sent, err)
		}
		got := drain(t, srv, n, size)
		received += len(got)
		drops, err := srv.RecvDrops()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("phase %d: received %d, RecvDrops %d, RxqOverflow %d", phase, len(got), drops, srv.RxqOverflow())
		if phase == 0 && (drops == 0 || srv.RxqOverflow() != 0) {
			t.Errorf("phase 0: RecvDrops %d, RxqOverflow %d; want > 0 and 0 (no datagram queued after a drop)", drops, srv.RxqOverflow())
		}
	}
	drops, err := srv.RecvDrops()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(received)+drops != n {
		t.Errorf("received %d + RecvDrops %d = %d, want %d sent", received, drops, uint64(received)+drops, n)
	}
	if ovfl := srv.RxqOverflow(); ovfl == 0 || ovfl > drops {
		t.Errorf("RxqOverflow = %d, want 1..%d (RecvDrops)", ovfl, drops)
	}
	if got := cli.SendErrors(); got != 0 {
		t.Errorf("client SendErrors = %d, want 0", got)
	}
}

// TestConnRefused: a connected socket sending to a port nobody listens on learns it
// from ICMP port unreachable, as ECONNREFUSED from a later Send or Recv.
func TestConnRefused(t *testing.T) {
	closed := listen(t, Options{})
	addr := closed.LocalAddr().String()
	closed.Close()
	cli := dial(t, addr, Options{})
	bufs, sizes := makeBufs(4, 64)
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		if _, err := cli.Send([][]byte{[]byte("anyone?")}); errors.Is(err, syscall.ECONNREFUSED) {
			refused = err
			break
		} else if err != nil {
			t.Fatalf("Send: %v, want nil or ECONNREFUSED", err)
		}
		if err := cli.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Recv(bufs, sizes); errors.Is(err, syscall.ECONNREFUSED) {
			refused = err
		}
	}
	if refused == nil {
		t.Fatal("no ECONNREFUSED after 100 datagrams to a closed port")
	}
	t.Logf("refused: %v; SendErrors %d", refused, cli.SendErrors())
	if cli.SendErrors() == 0 {
		t.Error("SendErrors = 0 after ECONNREFUSED, want ≥ 1")
	}
}

// TestServerSurvivesRefusedReply: a reply to a client that has gone away makes the
// kernel report ECONNREFUSED on the server socket; the server counts it and serves
// the next client.
func TestServerSurvivesRefusedReply(t *testing.T) {
	srv := listen(t, Options{})
	gone := dial(t, srv.LocalAddr().String(), Options{})
	if n, err := gone.Send([][]byte{[]byte("bye")}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if got := drain(t, srv, 1, 64); len(got) != 1 {
		t.Fatalf("server received %d, want 1", len(got))
	}
	gone.Close()
	if n, err := srv.Send([][]byte{[]byte("reply")}); n != 1 || err != nil {
		t.Fatalf("reply to a closed client: Send = %d, %v; want 1, nil (the kernel accepts it)", n, err)
	}
	next := dial(t, srv.LocalAddr().String(), Options{})
	if n, err := next.Send([][]byte{[]byte("hello")}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	got := drain(t, srv, 1, 64)
	if len(got) != 1 || string(got[0]) != "hello" {
		t.Fatalf("server received %q, want [\"hello\"]", got)
	}
	if n, err := srv.Send([][]byte{[]byte("welcome")}); n != 1 || err != nil {
		t.Fatalf("reply: Send = %d, %v", n, err)
	}
	if got := drain(t, next, 1, 64); len(got) != 1 || string(got[0]) != "welcome" {
		t.Fatalf("client received %q, want [\"welcome\"]", got)
	}
	if got := srv.SendErrors(); got != 1 {
		t.Errorf("server SendErrors = %d, want 1 (the refused reply)", got)
	}
}

// TestRecvBatch: one Recv returns every datagram already queued, at most Options.Batch.
func TestRecvBatch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		batch, sent int
		bufs, want  int
	}{
		{"all queued", 0, 10, 64, 10},
		{"fewer bufs", 0, 10, 3, 3},
		{"batch cap", 4, 10, 64, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := loopbackPair(t, Options{Batch: tc.batch}, Options{Batch: tc.batch})
			msgs := make([][]byte, tc.sent)
			for i := range msgs {
				msgs[i] = payload(i, 100)
			}
			if n, err := cli.Send(msgs); n != tc.sent || err != nil {
				t.Fatalf("Send(%d) = %d, %v", tc.sent, n, err)
			}
			bufs, sizes := makeBufs(tc.bufs, 100)
			if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
				t.Fatal(err)
			}
			n, err := srv.Recv(bufs, sizes)
			if n != tc.want || err != nil {
				t.Fatalf("Recv(%d bufs) with %d queued = %d, %v; want %d, nil", tc.bufs, tc.sent, n, err, tc.want)
			}
			for i := range n {
				if sizes[i] != 100 || binary.BigEndian.Uint64(bufs[i]) != uint64(i) {
					t.Fatalf("datagram %d: %d bytes, index %d", i, sizes[i], binary.BigEndian.Uint64(bufs[i]))
				}
			}
		})
	}
}

func TestBufferSizes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		recv, send int
	}{{"small", 8192, 8192}, {"64KiB", 65536, 32768}} {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t, Options{RecvBuffer: tc.recv, SendBuffer: tc.send})
			recv, send, err := c.BufferSizes()
			// Linux doubles each request below net.core.{r,w}mem_max.
			if err != nil || recv != 2*tc.recv || send != 2*tc.send {
				t.Fatalf("BufferSizes() = %d, %d, %v; want %d, %d, nil", recv, send, err, 2*tc.recv, 2*tc.send)
			}
		})
	}
}

// TestSetBuffers: sizes set on an open socket read back doubled; 0 leaves one as it
// is.
func TestSetBuffers(t *testing.T) {
	c := listen(t, Options{RecvBuffer: 8192, SendBuffer: 8192})
	if err := c.SetBuffers(48<<10, 0); err != nil {
		t.Fatal(err)
	}
	recv, send, err := c.BufferSizes()
	if err != nil || recv != 2*(48<<10) || send != 2*8192 {
		t.Fatalf("after SetBuffers(48 KiB, 0): BufferSizes() = %d, %d, %v; want %d, %d, nil", recv, send, err, 2*(48<<10), 2*8192)
	}
	if err := c.SetBuffers(0, -1); err == nil || !strings.Contains(err.Error(), "got 0, -1") {
		t.Errorf("SetBuffers(0, -1) = %v, want the size refused", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, o := range []Options{{RecvBuffer: -1}, {SendBuffer: -1}, {Batch: -1}, {Batch: maxBatch + 1}} {
		if c, err := Listen(t.Context(), "127.0.0.1:0", o); err == nil {
			c.Close()
			t.Errorf("Listen with %+v: no error", o)
		}
	}
}

// TestZeroAllocs pins the steady-state hot paths at 0 allocations: client Send,
// server Recv, server Send (answering the sources), client Recv.
func TestZeroAllocs(t *testing.T) {
	const batch = 16
	for _, mode := range offloadModes {
		for _, size := range []int{64, 1400} {
			t.Run(fmt.Sprintf("%s/size=%d", mode.name, size), func(t *testing.T) {
				testZeroAllocs(t, mode.o, batch, size)
			})
		}
	}
}

func testZeroAllocs(t *testing.T, o Options, batch, size int) {
	o.Batch, o.RecvBuffer = batch, 1<<20
	srv, cli := loopbackPair(t, o, o)
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = payload(i, size)
	}
	bufs, sizes := makeBufs(batch, 2048)
	out := make([][]byte, batch)
	cbufs, csizes := makeBufs(batch, 2048)
	for _, c := range []*Conn{srv, cli} {
		if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := cli.Send(msgs); n != batch || err != nil {
			failed = errors.Join(failed, err, errors.New("short client Send"))
			return
		}
		for got := 0; got < batch; {
			n, err := srv.Recv(bufs, sizes)
			if err != nil {
				failed = errors.Join(failed, err)
				return
			}
			for i := range n {
				out[i] = bufs[i][:sizes[i]]
			}
			if m, err := srv.Send(out[:n]); m != n || err != nil {
				failed = errors.Join(failed, err, errors.New("short server Send"))
				return
			}
			got += n
		}
		for got := 0; got < batch; {
			n, err := cli.Recv(cbufs, csizes)
			if err != nil {
				failed = errors.Join(failed, err)
				return
			}
			got += n
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("Send+Recv round trip of %d × %d bytes: %v allocs, want 0", batch, size, allocs)
	}
}

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestParseRxqOvfl(t *testing.T) {
	ovfl := func(v uint32) []byte { return cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(v)) }
	other := cmsg(unix.SOL_IP, unix.IP_TOS, []byte{0x10})
	for _, tc := range []struct {
		name    string
		in      []byte
		want    uint32
		ok, err bool
	}{
		{"empty", nil, 0, false, false},
		{"one", ovfl(42), 42, true, false},
		{"after another", append(other, ovfl(7)...), 7, true, false},
		{"before another", append(ovfl(9), other...), 9, true, false},
		{"last wins", append(ovfl(1), ovfl(2)...), 2, true, false},
		{"other only", other, 0, false, false},
		{"short header", ovfl(3)[:unix.SizeofCmsghdr-1], 0, false, true},
		{"short data", cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, []byte{1, 2}), 0, false, true},
		{"len past end", ovfl(5)[:unix.CmsgLen(4)-1], 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseRxqOvfl(tc.in)
			if got != tc.want || ok != tc.ok || (err != nil) != tc.err {
				t.Errorf("parseRxqOvfl(% x) = %d, %v, %v; want %d, %v, error %v", tc.in, got, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
}

// extErr returns a struct sock_extended_err for ECONNREFUSED from origin.
func extErr(origin uint8) []byte {
	e := unix.SockExtendedErr{Errno: uint32(unix.ECONNREFUSED), Origin: origin, Type: 3, Code: 3}
	return unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e))
}

func TestErrQueueOrigin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    uint8
		ok, err bool
	}{
		{"icmp", cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP)), unix.SO_EE_ORIGIN_ICMP, true, false},
		{"icmp6", cmsg(unix.SOL_IPV6, unix.IPV6_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP6)), unix.SO_EE_ORIGIN_ICMP6, true, false},
		{"local", cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_LOCAL)), unix.SO_EE_ORIGIN_LOCAL, true, false},
		{"none", cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(1)), 0, false, false},
		{"short", cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP)[:8]), 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := errQueueOrigin(tc.in)
			if got != tc.want || ok != tc.ok || (err != nil) != tc.err {
				t.Errorf("errQueueOrigin(% x) = %d, %v, %v; want %d, %v, error %v", tc.in, got, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
}

func FuzzParseRxqOvfl(f *testing.F) {
	f.Add([]byte{})
	f.Add(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(12345)))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_TOS, []byte{1}), cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(1))...))
	f.Add(cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP)))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok, err := parseRxqOvfl(b)
		if err == nil && !ok && v != 0 {
			t.Fatalf("parseRxqOvfl(% x) = %d without a message", b, v)
		}
		if origin, ok, _ := errQueueOrigin(b); !ok && origin != 0 {
			t.Fatalf("errQueueOrigin(% x) = %d without a message", b, origin)
		}
	})
}

// TestDualStackTooLarge: a dual-stack IPv6 server socket answering an IPv4 client is
// held to the IPv4 limit by the kernel; its EMSGSIZE surfaces as ErrMessageTooLarge.
func TestDualStackTooLarge(t *testing.T) {
	srv, err := Listen(t.Context(), "[::]:0", Options{})
	if err != nil {
		t.Skipf("udp: no dual-stack socket: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	port := srv.LocalAddr().(*net.UDPAddr).Port
	cli := dial(t, fmt.Sprintf("127.0.0.1:%d", port), Options{})
	if n, err := cli.Send([][]byte{[]byte("hi")}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if got := drain(t, srv, 1, 64); len(got) != 1 {
		t.Fatalf("server received %d, want 1", len(got))
	}
	n, err := srv.Send([][]byte{make([]byte, MaxPayloadIPv4+1)})
	if n != 0 || !errors.Is(err, ErrMessageTooLarge) || !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("Send(%d bytes) to an IPv4 peer = %d, %v; want 0, %v and EMSGSIZE", MaxPayloadIPv4+1, n, err, ErrMessageTooLarge)
	}
	t.Logf("error: %v", err)
	if got := srv.SendErrors(); got != 1 {
		t.Errorf("SendErrors = %d, want 1", got)
	}
}

// TestSendCalls: SendCalls counts the sendmmsg calls a Send made and the datagrams
// they carried, which the receiver then counts one by one: Batch chunks a Send's
// messages into calls, of Batch datagrams without GSO, of Batch super-datagrams with.
func TestSendCalls(t *testing.T) {
	for _, tc := range []struct {
		name      string
		o         Options
		sent      int
		wantCalls uint64
	}{
		{"batch 1 without gso", Options{Batch: 1, NoGSO: true}, 10, 10},
		{"batch 1 with gso", Options{Batch: 1}, 10, 1}, // one entry: a super-datagram of 10
		{"batch 4 without gso", Options{Batch: 4, NoGSO: true}, 10, 3},
		{"batch 64 without gso", Options{NoGSO: true}, 10, 1},
		{"batch 64 with gso", Options{}, 10, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := loopbackPair(t, Options{}, tc.o)
			msgs := make([][]byte, tc.sent)
			for i := range msgs {
				msgs[i] = payload(i, 100)
			}
			if n, err := cli.Send(msgs); n != tc.sent || err != nil {
				t.Fatalf("Send(%d) = %d, %v", tc.sent, n, err)
			}
			got := drain(t, srv, tc.sent, 100)
			calls, dgrams := cli.SendCalls()
			if calls != tc.wantCalls || dgrams != uint64(tc.sent) || len(got) != tc.sent {
				t.Errorf("%+v: SendCalls = %d calls, %d datagrams; the receiver got %d; want %d calls, %d datagrams",
					tc.o, calls, dgrams, len(got), tc.wantCalls, tc.sent)
			}
		})
	}
}
