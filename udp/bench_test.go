package udp

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// benchBurst is how many datagrams one benchmark op moves, whatever the batch size:
// ns/op and allocs/op are per burst of 64 datagrams in every sub-benchmark, so
// `benchstat -col /batch` and `-col /gso` compare like with like.
const benchBurst = 64

// BenchmarkSendRecv moves bursts of benchBurst datagrams from a connected client to a
// server socket on loopback, in lock step on one goroutine: one Send of the burst
// (split by the Conn into sendmmsg calls of at most batch messages), then Recv (at
// most batch datagrams per recvmmsg) until the burst is in or the receive buffer
// dropped the rest. Sub-benchmarks are named size=S/batch=B/gso=on|off:
//
//   - batch is Options.Batch on both sockets: batch=1 is the textbook one system
//     call per datagram each way.
//   - gso=off is Options.NoGSO; gso=on sends runs of equal-sized messages as one
//     UDP_SEGMENT super-datagram, which only a batch above 1 makes possible. A gso=on
//     cell on a kernel without UDP GSO is skipped, not run as gso=off.
//
// Metrics count what the receiver got, so a drop cannot pass for speed: msgs/s and
// B/s are datagrams and payload bytes received per second of the benchmark loop
// (no SetBytes: its MB/s would count what was sent). drops/op is the kernel's
// receive-buffer drop count (SO_MEMINFO; Linux only) per burst, and lost/msg the
// fraction of datagrams sent that never arrived, drops included. Lock step measures
// what a datagram costs both ends, with at most one burst queued: with a 4 MiB
// receive buffer both should stay 0 (a drop costs its op up to idleTimeout). A
// free-running sender would outrun the reader and measure the overflow instead,
// which the stream experiment does.
func BenchmarkSendRecv(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, batch := range []int{1, 8, 64} {
			for _, gso := range []bool{false, true} {
				b.Run(fmt.Sprintf("size=%d/batch=%d/gso=%s", size, batch, onOff(gso)), func(b *testing.B) {
					benchSendRecv(b, Options{Batch: batch, NoGSO: !gso}, size)
				})
			}
		}
	}
}

// BenchmarkSendRecvGRO is BenchmarkSendRecv at batch=64 with GSO on, with and without
// UDP GRO on the receiver (Options.GRO): the kernel queues a GSO burst as coalesced
// super-packets and Recv splits them back. With GRO, drops/op counts super-packets
// (see Options.GRO); lost/msg still counts datagrams.
func BenchmarkSendRecvGRO(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, gro := range []bool{false, true} {
			b.Run(fmt.Sprintf("size=%d/batch=64/gro=%s", size, onOff(gro)), func(b *testing.B) {
				benchSendRecv(b, Options{Batch: 64, GRO: gro}, size)
			})
		}
	}
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func benchSendRecv(b *testing.B, o Options, size int) {
	srvOpts := o
	srvOpts.RecvBuffer = 4 << 20
	srv, cli := loopbackPair(b, srvOpts, o)
	if gso, _ := cli.Offload(); gso == o.NoGSO {
		b.Skipf("udp: asked for gso=%s, the socket has gso=%s (no UDP GSO here?)", onOff(!o.NoGSO), onOff(gso))
	}
	if _, gro := srv.Offload(); gro != o.GRO {
		b.Skipf("udp: asked for gro=%s, the socket has gro=%s (no UDP GRO here?)", onOff(o.GRO), onOff(gro))
	}
	msgs := make([][]byte, benchBurst)
	for i := range msgs {
		msgs[i] = payload(i, size)
	}
	bufs, sizes := makeBufs(benchBurst, 2048)
	// One burst before the clock starts: scratch space a Conn allocates on first use
	// (GRO's receive buffers) is not a per-op cost.
	if n, err := cli.Send(msgs); err != nil {
		b.Fatal(err)
	} else if _, err := recvBurst(srv, bufs, sizes, n); err != nil {
		b.Fatal(err)
	}
	// Without the kernel's drop counter (not Linux), drops/op is left out; lost/msg
	// still counts every datagram that did not arrive.
	drops0, dropsErr := srv.RecvDrops()
	b.ReportAllocs()
	var sent, received int
	for b.Loop() {
		n, err := cli.Send(msgs)
		if err != nil {
			b.Fatal(err)
		}
		sent += n
		got, err := recvBurst(srv, bufs, sizes, n)
		if err != nil {
			b.Fatal(err)
		}
		received += got
	}
	elapsed := b.Elapsed().Seconds()
	if gso, _ := cli.Offload(); gso == o.NoGSO {
		b.Errorf("udp: the kernel refused a GSO super-datagram during the run: part of it ran with gso=off")
	}
	b.ReportMetric(float64(received)/elapsed, "msgs/s")
	b.ReportMetric(float64(received*size)/elapsed, "B/s")
	if dropsErr == nil {
		drops, err := srv.RecvDrops()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(drops-drops0)/float64(b.N), "drops/op")
	}
	b.ReportMetric(float64(sent-received)/float64(max(sent, 1)), "lost/msg")
}

// recvBurst reads from srv until want datagrams have arrived or been dropped, and
// returns how many arrived. It learns of drops from the count that arriving
// datagrams carry (SO_RXQ_OVFL, no system call) and, when nothing arrives for
// idleTimeout, from SO_MEMINFO; what is still missing then is lost.
func recvBurst(srv *Conn, bufs [][]byte, sizes []int, want int) (got int, err error) {
	rxq0 := srv.RxqOverflow()
	for got < want {
		if err := srv.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			return got, err
		}
		n, err := srv.Recv(bufs, sizes)
		got += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if dropped := int(srv.RxqOverflow() - rxq0); got+dropped >= want {
			return got, nil
		}
	}
	return got, nil
}
