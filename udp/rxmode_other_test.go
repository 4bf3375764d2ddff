//go:build !linux

package udp

import (
	"errors"
	"testing"
	"time"
)

// TestRecvStampsUnsupported: without kernel timestamps RecvStamps reports none, never
// a made-up time.
func TestRecvStampsUnsupported(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	if srv.Timestamps() {
		t.Fatal("Timestamps() = true on a system without SO_TIMESTAMPNS support here")
	}
	if n, err := cli.Send([][]byte{[]byte("x")}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	bufs, sizes := makeBufs(1, 64)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Recv(bufs, sizes); n != 1 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if k := srv.RecvStamps(make([]int64, 1)); k != 0 {
		t.Fatalf("RecvStamps = %d, want 0", k)
	}
}

// TestBusyPollUnsupported: asking for busy polling where it is not implemented fails
// the open and says so.
func TestBusyPollUnsupported(t *testing.T) {
	c, err := Listen(t.Context(), "127.0.0.1:0", Options{BusyPoll: true})
	if err == nil {
		c.Close()
		t.Fatal("Listen with BusyPoll: no error")
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Listen with BusyPoll: %v, want errors.ErrUnsupported", err)
	}
}
