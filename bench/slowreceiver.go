package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpSlowReceiver,
		section: report.Section{Title: "Slow receiver (slow-receiver)", Layout: report.LayoutTable, Params: []string{report.ParamReaderRate},
			Charts: []report.Chart{{Kind: report.ChartSeries, File: "slow_receiver.svg", Title: "Slow receiver: messages sent and delivered",
				Heading: "Slow receiver: messages sent and delivered (cumulative)"}}},
		help:  "a reader at --reader-rate: TCP holds the sender to it and loses nothing; UDP's sender runs on and the receive buffer drops the rest",
		place: 50, run: runSlowReceiver, summary: streamSummary,
		properties: []report.Rule{report.RuleFlowControl},
		far:        &FarHalf{RunsAs: report.ExpStream}, // its cells run streams with a slow receiver
		expect:     func(p Plan) time.Duration { return phaseTime(p, slowReceiverMax) }})
}

// slowBuffer is the receive and send buffer the slow-receiver sockets ask for, in
// bytes (the kernel doubles it): small, so the sender meets the reader's pace within
// milliseconds instead of after megabytes of buffering.
const slowBuffer = 64 << 10

// slowReceiverMax bounds the sending phase of slow-receiver, whatever --duration says:
// the behaviour shows within a second.
const slowReceiverMax = 2 * time.Second

// runSlowReceiver shows flow control. The receiving application reads no faster than
// p.ReaderBps through a small receive buffer; the sender sends as fast as the
// transport lets it. A flow-controlled transport holds the sender to the reader's
// pace (its Send blocks; TCP_INFO counts the time the receive window limited it) and
// loses nothing. One without flow control keeps sending; what the reader cannot take
// overflows the receive buffer and is counted there, so socket + sender + network
// drops account for every missing message.
//
// With a far end (Plan.Far) the receiver is there: it asks for the small receive
// buffer on its endpoints and reads at the pace, this host asks for the small send
// buffer on its own, and the time line joins both hosts' counts at the first data
// message (mergeSeries).
func runSlowReceiver(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	var warns []string
	var farBuffers bool
	if e.far != nil {
		farBuffers = true // the endpoints are opened elsewhere: streamOpts sizes them open
	} else if o, ok := nw.(transport.Optionable); ok {
		nw = o.WithBuffers(slowBuffer, slowBuffer)
	} else {
		warns = append(warns, fmt.Sprintf("%s: cannot shrink the receive buffer: flow control shows later", nw.Name()))
	}
	if p.Count == 0 {
		p.DurationS = min(p.DurationS, slowReceiverMax.Seconds())
	}
	so := streamOpts{
		drain:      e.drain + 5*time.Second, // the sender's queued bytes reach a slow reader late; a complete TCP flow ends it early
		readerBps:  p.ReaderBps,
		seriesStep: 50 * time.Millisecond,
	}
	if farBuffers {
		so.recvBuffer, so.sendBuffer = slowBuffer, slowBuffer
	}
	o, err := streamCell(ctx, e, nw, p, so)
	if err != nil {
		return o, err
	}
	o.warns = append(warns, o.warns...)
	m := o.m
	report.Set(o.observed, report.ObsReaderRateBps, p.ReaderBps)
	report.Set(o.observed, report.ObsSendRateBps, m.SendRateBps)
	report.Set(o.observed, report.ObsGoodputBps, m.GoodputBps)
	report.Set(o.observed, report.ObsMissingMsgs, m.LostMsgs)
	if m.DropsSocket != nil && m.DropsNetwork != nil {
		attributed := *m.DropsSocket + m.DropsSender + *m.DropsNetwork
		report.Set(o.observed, report.ObsDropsSocket, *m.DropsSocket)
		report.Set(o.observed, report.ObsDropsAttributedMsgs, attributed)
		report.Set(o.observed, report.ObsDropsAccountForMissing, attributed == m.LostMsgs)
	}
	report.Set(o.observed, report.ObsBytesDeliveredEqualSent, m.RecvBytes == m.SentBytes)
	if r, ok := steadySendRate(o.series, p.Size); ok {
		report.Set(o.observed, report.ObsSendRateSteadyBps, r)
	}
	return o, nil
}

// steadySendRate is the sender's rate, bits/s, over the second half of its sending
// time: once the socket buffers are full, what the transport lets it do.
func steadySendRate(series []report.Sample, size int) (float64, bool) {
	// The sending phase ends at the first sample after which sent stops growing.
	end := len(series) - 1
	for end > 0 && series[end-1].SentMsgs == series[end].SentMsgs {
		end--
	}
	if end < 4 {
		return 0, false
	}
	mid := end / 2
	dt := series[end].TS - series[mid].TS
	if dt <= 0 {
		return 0, false
	}
	return float64(series[end].SentMsgs-series[mid].SentMsgs) * float64(size) * 8 / dt, true
}
