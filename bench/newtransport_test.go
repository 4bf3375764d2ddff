//go:build linux

package bench_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
)

// seqpacket is a transport defined here, in a test, to show that a new transport
// is a package of its own plus one registration: Unix-domain SOCK_SEQPACKET, which
// keeps message boundaries, delivers in order and has a connection per client.
// Its sockets have abstract names (Linux), so they leave no file behind; the
// address an experiment listens on ("127.0.0.1:0") only asks for a new one.
type seqpacket struct{}

var seqpacketSockets atomic.Uint64

func (seqpacket) Name() string    { return "seqpacket" }
func (seqpacket) MaxMessage() int { return 65507 }

func (seqpacket) Listen(ctx context.Context, _ string) (transport.Listener, error) {
	path := fmt.Sprintf("@tcpvsudp-seqpacket-%d-%d", os.Getpid(), seqpacketSockets.Add(1))
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	return seqListener{l}, nil
}

func (seqpacket) Dial(ctx context.Context, address string) (transport.Transport, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", address)
	if err != nil {
		return nil, err
	}
	return &seqConn{c: c.(*net.UnixConn)}, nil
}

type seqListener struct{ l *net.UnixListener }

func (l seqListener) Accept(ctx context.Context) (transport.Transport, error) {
	stop := context.AfterFunc(ctx, func() { l.l.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := l.l.AcceptUnix()
	if err != nil {
		return nil, errors.Join(ctx.Err(), err)
	}
	return &seqConn{c: c}, nil
}

func (l seqListener) Addr() net.Addr { return l.l.Addr() }
func (l seqListener) Close() error   { return l.l.Close() }

// seqConn moves one message per system call, each record a marker byte and the
// message (Go reads a zero-length record as the end of the connection, so an
// empty message needs the marker); a message larger than its buffer is an error
// (MSG_TRUNC), never a silent cut.
type seqConn struct {
	c    *net.UnixConn
	mark [1]byte
}

var errTooLarge = errors.New("seqpacket: message larger than its buffer")

func (s *seqConn) Send(msgs [][]byte) (int, error) {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return 0, err
	}
	for i, m := range msgs {
		if len(m) > 65507 {
			return i, fmt.Errorf("seqpacket: message of %d bytes exceeds 65507", len(m))
		}
		var serr error
		if err := rc.Write(func(fd uintptr) bool {
			_, serr = unix.SendmsgBuffers(int(fd), [][]byte{{1}, m}, nil, nil, unix.MSG_DONTWAIT)
			return serr != unix.EAGAIN
		}); err != nil {
			return i, err
		}
		if serr != nil {
			return i, serr
		}
	}
	return len(msgs), nil
}

func (s *seqConn) Recv(bufs [][]byte, sizes []int) (int, error) {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n, flags int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, flags, _, rerr = unix.RecvmsgBuffers(int(fd), [][]byte{s.mark[:], bufs[0]}, nil, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF // every record has its marker: nothing is the peer gone
	case flags&unix.MSG_TRUNC != 0:
		return 0, errTooLarge
	}
	sizes[0] = n - 1
	return 1, nil
}

func (s *seqConn) SetReadDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }
func (s *seqConn) Close() error                      { return s.c.Close() }

func init() {
	transport.Register(transport.Spec{Name: "seqpacket", Caps: transport.Caps{Reliable: true, Connected: true},
		Open: func(transport.NetOptions) transport.Network { return seqpacket{} }})
}

// TestNewTransport: a transport registered by a test, with no file of bench
// changed, passes the conformance suite and runs stream, pingpong and connect, with
// known counts: every message of the stream delivered once, in order; every
// request answered.
func TestNewTransport(t *testing.T) {
	nw, err := transport.NetworkByName("seqpacket", transport.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("conformance", func(t *testing.T) { transporttest.Conformance(t, nw, transport.CapsOf("seqpacket")) })

	const count = 2000
	rep, err := bench.Run(context.Background(), bench.Plan{Transports: []string{"seqpacket"},
		Experiments: []string{report.ExpStream, report.ExpPingPong, report.ExpConnect},
		Sizes:       []int{256}, Count: count, Warmup: bench.NoWarmup, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Experiment] = true
		m := r.Metrics
		if r.Transport != "seqpacket" || r.Error != "" {
			t.Errorf("%s over %s: error %q", r.Experiment, r.Transport, r.Error)
			continue
		}
		switch r.Experiment {
		case report.ExpStream:
			if m.SentMsgs != count || m.RecvMsgs != count || m.LostMsgs != 0 || m.ReorderedMsgs != 0 || m.DupMsgs != 0 || m.CorruptMsgs != 0 {
				t.Errorf("stream: sent %d, received %d, lost %d, reordered %d, duplicates %d, corrupt %d; want %d each way, nothing else",
					m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ReorderedMsgs, m.DupMsgs, m.CorruptMsgs, count)
			}
		case report.ExpPingPong, report.ExpConnect:
			if m.SentMsgs != count || m.RecvMsgs != count || m.Timeouts != 0 || m.RTT == nil || m.RTT.Samples != count {
				t.Errorf("%s: sent %d, answered %d, unanswered %d, RTT %+v; want %d answered, an RTT each", r.Experiment, m.SentMsgs, m.RecvMsgs, m.Timeouts, m.RTT, count)
			}
		}
	}
	for _, x := range []string{report.ExpStream, report.ExpPingPong, report.ExpConnect} {
		if !seen[x] {
			t.Errorf("no %s result", x)
		}
	}
}
