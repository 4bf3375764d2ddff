package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// The benchmarks run the experiments themselves with b.N as the exact count, so
// `benchstat -col /transport` sets TCP beside UDP for the same workload.

var benchSizes = []int{64, 1024, 8192}

func benchEnv(b *testing.B) *runEnv {
	e := testEnv(b)
	e.warmup = 0
	e.timeout = 200 * time.Millisecond
	return e
}

// BenchmarkStream sends b.N messages one way and reports what the receiver got.
// Every figure it prints covers one interval, the cell's measured phase: from the
// first measured send to the end of the drain (measuredTimer). ns/op, B/op and
// allocs/op are that phase per message sent; goodput-Mbit/s is the unique payload
// received in it, sent-Mbit/s what was sent in it, and lost/msg and
// reordered/msg are fractions of the messages sent. Set-up and teardown are outside
// it. (The report's goodput divides by the receiver's own interval, first to last
// arrival, so it is a little higher: the drain's quiet spell is not in it.) There is
// no MB/s: SetBytes would count sent bytes, which a lossy UDP cell never delivers.
// For TCP it adds the 128 KiB messages of a bulk transfer (iperf3's default TCP read
// and write size; too large for a UDP datagram).
func BenchmarkStream(b *testing.B) {
	for _, name := range []string{"tcp", "udp"} {
		sizes := benchSizes
		if name == "tcp" {
			sizes = append(sizes[:len(sizes):len(sizes)], 128<<10)
		}
		for _, size := range sizes {
			b.Run(fmt.Sprintf("transport=%s/size=%d", name, size), func(b *testing.B) {
				nw := mustNetwork(b, name, transport.NetOptions{NoDelay: true})
				b.ReportAllocs()
				e := benchEnv(b)
				measured := measuredTimer(b, e)
				m, _, err := runStream(context.Background(), e, nw, report.Params{Size: size, Streams: 1, Count: uint64(b.N)})
				if err != nil {
					b.Fatal(err)
				}
				s := measured().Seconds()
				if s <= 0 {
					b.Fatal("the stream cell marked no measured phase")
				}
				b.ReportMetric(float64(m.LostMsgs)/float64(max(m.SentMsgs, 1)), "lost/msg")
				b.ReportMetric(float64(m.ReorderedMsgs)/float64(max(m.SentMsgs, 1)), "reordered/msg")
				b.ReportMetric(float64(m.RecvBytes)*8/s/1e6, "goodput-Mbit/s")
				b.ReportMetric(float64(m.SentBytes)*8/s/1e6, "sent-Mbit/s")
			})
		}
	}
}

// measuredTimer runs b's timer over a stream cell's measured phase only, from the
// first measured send to the end of the drain (runEnv.markMeasured), and returns
// the phase's length once the cell is done. The cell calls it on b's goroutine.
func measuredTimer(b *testing.B, e *runEnv) (measured func() time.Duration) {
	b.ResetTimer()
	b.StopTimer()
	var start time.Time
	var d time.Duration
	e.onMeasured = func(end bool) {
		if !end {
			b.StartTimer()
			start = time.Now()
			return
		}
		d = time.Since(start)
		b.StopTimer()
	}
	return func() time.Duration { return d }
}

func BenchmarkPingPong(b *testing.B) {
	for _, name := range []string{"tcp", "udp"} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("transport=%s/size=%d", name, size), func(b *testing.B) {
				nw := mustNetwork(b, name, transport.NetOptions{NoDelay: true})
				b.SetBytes(int64(2 * size))
				b.ReportAllocs()
				b.ResetTimer()
				m, _, err := runPingPong(context.Background(), benchEnv(b), nw, report.Params{Size: size, Count: uint64(b.N)})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(m.LostMsgs)/float64(max(m.SentMsgs, 1)), "lost/msg")
				if m.RTT != nil && m.RTT.P99 != nil {
					b.ReportMetric(float64(*m.RTT.P99), "p99-rtt-ns")
				}
			})
		}
	}
}

func BenchmarkConnect(b *testing.B) {
	for _, name := range []string{"tcp", "udp"} {
		b.Run(fmt.Sprintf("transport=%s/size=64", name), func(b *testing.B) {
			nw := mustNetwork(b, name, transport.NetOptions{NoDelay: true})
			b.ReportAllocs()
			b.ResetTimer()
			m, _, err := runConnect(context.Background(), benchEnv(b), nw, report.Params{Size: 64, Count: uint64(b.N)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(m.LostMsgs)/float64(max(m.SentMsgs, 1)), "lost/op")
			if m.RTT != nil && m.RTT.P99 != nil {
				b.ReportMetric(float64(*m.RTT.P99), "p99-first-answer-ns")
			}
			b.ReportMetric(float64(m.ServerSockets)/float64(max(m.SentMsgs, 1)), "server-sockets/op")
		})
	}
}

// BenchmarkStreamPacer is how closely a paced stream's sender keeps its rate: b.N
// messages of 1400 bytes at the pace, the error of the report's send rate in
// rate-error-% (TestStreamPacer checks only that it paces). A timetable never runs
// ahead, so the error is at most about 100/b.N % (b.N messages span b.N-1 periods);
// below 0 the sender fell behind: a busy host, or a pacer that drifts.
func BenchmarkStreamPacer(b *testing.B) {
	for _, rate := range []float64{10e6, 1e9} {
		for _, name := range []string{"tcp", "udp"} {
			b.Run(fmt.Sprintf("transport=%s/rate=%g", name, rate), func(b *testing.B) {
				nw := mustNetwork(b, name, transport.NetOptions{NoDelay: true})
				e := benchEnv(b)
				measuredTimer(b, e) // ns/op: the measured phase per message, about the pacing period
				m, _, err := runStream(context.Background(), e, nw, report.Params{Size: 1400, Streams: 1, Count: uint64(b.N), RateBps: rate})
				if err != nil {
					b.Fatal(err)
				}
				if m.SendIntervalS > 0 && b.N >= 100 { // fewer: the span is too short to say (-benchtime=1x)
					b.ReportMetric(100*(m.SendRateBps/rate-1), "rate-error-%")
				}
			})
		}
	}
}

// BenchmarkOpenLoopPacer is how closely open-loop pingpong keeps its timetable at
// 1000 requests/s: the error of its send rate (rate-error-%; never above 0, as no
// request leaves early) and how late its sends were (mean and max, ns). One
// iteration is one request, so ns/op is about the 1 ms period. TestOpenLoopPacer
// checks only that it paces.
func BenchmarkOpenLoopPacer(b *testing.B) {
	nw := mustNetwork(b, "udp", transport.NetOptions{})
	e := benchEnv(b)
	b.ResetTimer()
	o, err := runPingPongCell(context.Background(), e, nw, report.Params{Size: 64, Count: uint64(b.N), PingRate: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(100*(o.m.SendMsgsPerS/1000-1), "rate-error-%")
	if lag, ok := o.observed["mean_send_lag_ns"].(int64); ok {
		b.ReportMetric(float64(lag), "mean-send-lag-ns")
	}
	if lag, ok := o.observed["max_send_lag_ns"].(int64); ok {
		b.ReportMetric(float64(lag), "max-send-lag-ns")
	}
}
