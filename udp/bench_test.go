package udp

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkSendRecv moves batches of 64 datagrams from a connected client to a server
// socket on loopback: one Send, then Recv until the batch is in or the queue stays
// empty for idleTimeout (a datagram dropped by the receive buffer). It runs with GSO
// on Send (the default), without (NoGSO), and with GSO and GRO.
func BenchmarkSendRecv(b *testing.B) {
	const batch = 64
	for _, mode := range []struct {
		name string
		o    Options
	}{
		{"gso=on", Options{}},
		{"gso=off", Options{NoGSO: true}},
		{"gso=on,gro=on", Options{GRO: true}},
	} {
		for _, size := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/size=%d", mode.name, size), func(b *testing.B) {
				benchSendRecv(b, mode.o, batch, size)
			})
		}
	}
}

func benchSendRecv(b *testing.B, o Options, batch, size int) {
	srvOpts := o
	srvOpts.RecvBuffer = 4 << 20
	srv, cli := loopbackPair(b, srvOpts, o)
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = payload(i, size)
	}
	bufs, sizes := makeBufs(batch, 2048)
	b.SetBytes(int64(batch * size))
	b.ReportAllocs()
	var sent, received int
	start := time.Now()
	for b.Loop() {
		n, err := cli.Send(msgs)
		if err != nil {
			b.Fatal(err)
		}
		sent += n
		for got := 0; got < n; {
			if err := srv.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
				b.Fatal(err)
			}
			m, err := srv.Recv(bufs, sizes)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got += m
			received += m
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(received)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(sent-received)/float64(max(sent, 1)), "lost/msg")
}
