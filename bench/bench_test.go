package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
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

// BenchmarkStream adds, for TCP, the 128 KiB messages of a bulk transfer (iperf3's
// default TCP read and write size; too large for a UDP datagram).
func BenchmarkStream(b *testing.B) {
	for _, name := range []string{"tcp", "udp"} {
		sizes := benchSizes
		if name == "tcp" {
			sizes = append(sizes[:len(sizes):len(sizes)], 128<<10)
		}
		for _, size := range sizes {
			b.Run(fmt.Sprintf("transport=%s/size=%d", name, size), func(b *testing.B) {
				nw := mustNetwork(b, name, NetOptions{NoDelay: true})
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				m, _, err := runStream(context.Background(), benchEnv(b), nw, report.Params{Size: size, Streams: 1, Count: uint64(b.N)})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(m.LostMsgs)/float64(max(m.SentMsgs, 1)), "lost/msg")
				b.ReportMetric(float64(m.ReorderedMsgs)/float64(max(m.SentMsgs, 1)), "reordered/msg")
				b.ReportMetric(m.GoodputBps/1e6, "goodput-Mbit/s")
			})
		}
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, name := range []string{"tcp", "udp"} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("transport=%s/size=%d", name, size), func(b *testing.B) {
				nw := mustNetwork(b, name, NetOptions{NoDelay: true})
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
			nw := mustNetwork(b, name, NetOptions{NoDelay: true})
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
				nw := mustNetwork(b, name, NetOptions{NoDelay: true})
				b.SetBytes(1400)
				b.ResetTimer()
				m, _, err := runStream(context.Background(), benchEnv(b), nw, report.Params{Size: 1400, Streams: 1, Count: uint64(b.N), RateBps: rate})
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
	nw := mustNetwork(b, "udp", NetOptions{})
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
