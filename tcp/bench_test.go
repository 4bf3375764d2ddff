package tcp

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// benchBurst is how many messages one benchmark op sends, whatever the batch size:
// ns/op and allocs/op are per 64 messages in every sub-benchmark, so
// `benchstat -col /batch` compares like with like.
const benchBurst = 64

// BenchmarkSendRecv streams framed messages over a loopback connection (TCP_NODELAY
// on) to a reader goroutine. One op sends a burst of benchBurst messages as
// benchBurst/batch Send calls of batch messages each; the reader calls Recv with room
// for batch messages. Sub-benchmarks are named size=S/batch=B: batch=1 is the
// textbook one write per message; a larger batch lets Send frame several messages
// into one write (writev beyond 8 KiB), and Recv return several per call (its reads
// take what the kernel has, up to 256 KiB, whatever the batch). size=131072 is the
// bulk-transfer case iperf3 is compared on (its default TCP read and write size).
//
// ns/op is the sender's time per burst. msgs/s and B/s count what the reader got,
// from the first timed send to the last message read: messages still in the socket
// buffers when the loop ends are waited for, and their time counted.
func BenchmarkSendRecv(b *testing.B) {
	for _, size := range []int{64, 1024, 8192, 128 << 10} {
		for _, batch := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("size=%d/batch=%d", size, batch), func(b *testing.B) {
				benchSendRecv(b, size, batch)
			})
		}
	}
}

func benchSendRecv(b *testing.B, size, batch int) {
	client, server := loopbackPair(b)
	burst := make([][]byte, benchBurst)
	for i := range burst {
		burst[i] = pattern(i, size)
	}
	// The reader's results, written by it and read after wg.Wait.
	var (
		received int       // messages
		last     time.Time // when the last message arrived
		rerr     error
	)
	var wg sync.WaitGroup
	wg.Go(func() { // reads until the client closes its side
		bufs := make([][]byte, batch)
		for i := range bufs {
			bufs[i] = make([]byte, size)
		}
		sizes := make([]int, batch)
		for {
			n, err := server.Recv(bufs, sizes)
			if n > 0 {
				received += n
				last = time.Now()
			}
			if err != nil {
				if err != io.EOF {
					rerr = err
				}
				return
			}
		}
	})
	// On a failure below, closing the client ends the reader (EOF, or an error).
	defer func() {
		client.Close()
		wg.Wait()
	}()

	send := func() {
		for i := 0; i < benchBurst; i += batch {
			if _, err := client.Send(burst[i : i+batch]); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Before the clock starts: the Conns allocate their buffers on first use. The
	// reader's also grows, by doubling, each time a read fills it (up to 256 KiB), as
	// the traffic asks: growth left after the warm-up shows in B/op (a few hundred KB
	// per run, amortized), never in allocs/op.
	const warm = 256 // bursts
	for range warm {
		if _, err := client.Send(burst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		send()
	}
	if err := client.NetConn().CloseWrite(); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	if rerr != nil {
		b.Fatalf("reader: %v", rerr)
	}
	if want := (b.N + warm) * benchBurst; received != want {
		b.Fatalf("reader got %d messages, want %d", received, want)
	}
	got := received - warm*benchBurst // some may have arrived after start: a slight overcount
	secs := last.Sub(start).Seconds()
	b.ReportMetric(float64(got)/secs, "msgs/s")
	b.ReportMetric(float64(got*size)/secs, "B/s")
}
