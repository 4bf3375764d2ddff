package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpConnect,
		section: report.Section{Title: "Connection setup (connect)", Layout: report.LayoutSetup, Charts: []report.Chart{
			{Kind: report.ChartLatencyCDF, File: "connect_cdf.svg", Title: "Time to first answer", Heading: "Time to first answer distribution",
				Field: "rtt_ns", XLabel: "time to first answer (us)", YLabel: "fraction of answers slower"},
		}},
		help:  "time to first answer from a new client (TCP: handshake + request + reply; UDP: one request + reply) and transactions/s",
		place: 110, run: metricsOnly(runConnect), measures: true, smallestSize: true, requestResponse: true,
		summary:    func(r *report.Result) string { return requestSummary(r, "first answer") },
		properties: []report.Rule{report.RuleSetup, report.RuleSocketCount},
		far:        &FarHalf{OnePath: true, Listen: true, Serve: serveConnect}})
}

// serveConnect is connect's server half, here or at a far end: an echo for every
// new client.
var serveConnect = serveListen(false)

// runConnect measures what it costs to get a first answer from a server nobody has
// talked to yet. One transaction: open a client endpoint (TCP: the three-way
// handshake; UDP: a local socket, no packet), send one request, read one reply,
// close. The time to first answer runs from the start of the dial to the reply;
// transactions/s includes the close. The server's endpoint count shows the other
// half of the claim: TCP accepts a socket per client, UDP answers all from one.
func runConnect(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (report.Metrics, []string, error) {
	var warns []string
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	dur := e.warmup + time.Duration(p.DurationS*float64(time.Second))
	if p.Count > 0 {
		dur = 0 // unknown: the far end bounds it by its own limit
	}
	srv, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpConnect, Transport: nw.Name(), Size: p.Size, Streams: 1, Duration: dur, Listen: true}, serverHalf{half: serveConnect})
	if err != nil {
		return report.Metrics{}, nil, err
	}
	defer srv.finish(context.WithoutCancel(ctx))
	c := newRequester(e, p.Size)

	var dialErrs, dialed uint64
	var firstErr error
	transact := func(m *report.Metrics, lat *metrics.Latency) error {
		from := e.now()
		t, err := srv.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dialErrs++
			if firstErr == nil {
				firstErr = err
			}
			m.SentMsgs++
			m.Timeouts++
			return nil
		}
		dialed++
		stop := ctxwatch.OnDone(ctx, func() { t.Close() })
		err = c.roundTrip(t, wire.KindRequest, m, lat, from)
		stop()
		if cerr := t.Close(); err == nil && cerr != nil && !isClosed(cerr) {
			err = cerr
		}
		return err
	}

	var warm report.Metrics
	if e.warmup > 0 {
		until := time.Now().Add(e.warmup)
		for n := 0; n < 1000 && time.Now().Before(until) && ctx.Err() == nil; n++ {
			if err := transact(&warm, nil); err != nil {
				return report.Metrics{}, nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	socketsBefore := int(dialed) // far: every warm-up client the far end took
	if n, ok := srv.accepted(); ok {
		socketsBefore = n
	}
	dialErrs, firstErr = 0, nil

	u0, uerr := metrics.ReadUsage()
	lat := metrics.NewLatency()
	var m report.Metrics
	start := time.Now()
	until := start.Add(time.Duration(p.DurationS * float64(time.Second)))
	for ctx.Err() == nil {
		if p.Count > 0 && m.SentMsgs >= p.Count {
			break
		}
		if p.Count == 0 && !time.Now().Before(until) {
			break
		}
		if err := transact(&m, lat); err != nil {
			return report.Metrics{}, nil, fmt.Errorf("transaction %d: %w", m.SentMsgs, err)
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return report.Metrics{}, nil, fmt.Errorf("stopped after %d transactions: %w", m.SentMsgs, err)
	}
	u1, _ := metrics.ReadUsage()
	fr := srv.finish(ctx)
	socketsAfter := fr.ServerSockets
	warns = append(warns, fr.Warnings...)
	if dialErrs > 0 {
		warns = append(warns, fmt.Sprintf("%d dials failed (counted unanswered); first: %v", dialErrs, firstErr))
	}

	finishRequests(&m, lat, p.Size, elapsed)
	if uerr == nil {
		metrics.SetUsage(&m, u1.Sub(u0), 0) // no bytes: a connection's cost is per transaction
	}
	// Server sockets the measured transactions needed: TCP one per client, UDP none
	// beyond the one it had (then the figure is that one).
	m.ServerSockets = max(socketsAfter-socketsBefore, min(socketsAfter, 1))
	m.ServerCPUSec = fr.CPUSec
	return m, warns, nil
}
