package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpConnect,
		help:  "time to first answer from a new client (TCP: handshake + request + reply; UDP: one request + reply) and transactions/s",
		place: 110, run: metricsOnly(runConnect), measures: true, smallestSize: true})
}

// runConnect measures what it costs to get a first answer from a server nobody has
// talked to yet. One transaction: open a client endpoint (TCP: the three-way
// handshake; UDP: a local socket, no packet), send one request, read one reply,
// close. The time to first answer runs from the start of the dial to the reply;
// transactions/s includes the close. The server's endpoint count shows the other
// half of the claim: TCP accepts a socket per client, UDP answers all from one.
func runConnect(ctx context.Context, e *runEnv, nw Network, p report.Params) (report.Metrics, []string, error) {
	var warns []string
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	srv, err := openConnectEnd(ctx, e, nw, p)
	if err != nil {
		return report.Metrics{}, nil, err
	}
	defer srv.finish(context.WithoutCancel(ctx))
	c := newRequester(e, p.Size)

	var dialErrs, dialed uint64
	var firstErr error
	transact := func(m *report.Metrics, lat *Latency) error {
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
		err = c.roundTrip(t, KindRequest, m, lat, from)
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
	if srv.accepted != nil {
		socketsBefore = srv.accepted()
	}
	dialErrs, firstErr = 0, nil

	u0, uerr := ReadUsage()
	lat := NewLatency()
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
	u1, _ := ReadUsage()
	socketsAfter, swarns, serverCPU := srv.finish(ctx)
	warns = append(warns, swarns...)
	if dialErrs > 0 {
		warns = append(warns, fmt.Sprintf("%d dials failed (counted unanswered); first: %v", dialErrs, firstErr))
	}

	finishRequests(&m, lat, p.Size, elapsed)
	if uerr == nil {
		setUsage(&m, u1.Sub(u0), 0) // no bytes: a connection's cost is per transaction
	}
	// Server sockets the measured transactions needed: TCP one per client, UDP none
	// beyond the one it had (then the figure is that one).
	m.ServerSockets = max(socketsAfter-socketsBefore, min(socketsAfter, 1))
	m.ServerCPUSec = serverCPU
	return m, warns, nil
}

// connectEnd is the server half of a connect cell, seen from the client: an echo
// server in this process, or a far end that keeps taking new clients (FarSpec.Listen).
type connectEnd struct {
	dial     func(ctx context.Context) (Transport, error) // a new client's endpoint
	accepted func() int                                   // endpoints the server opened for clients so far; nil when only the far end's last count is known
	stop     func(ctx context.Context) (sockets int, warns []string, serverCPU *float64)

	once      sync.Once
	sockets   int
	warns     []string
	serverCPU *float64
}

// finish stops the server half and returns the endpoints it opened for clients in
// all, its warnings and (far end) its CPU. Later calls return the first call's.
func (c *connectEnd) finish(ctx context.Context) (int, []string, *float64) {
	c.once.Do(func() { c.sockets, c.warns, c.serverCPU = c.stop(ctx) })
	return c.sockets, c.warns, c.serverCPU
}

func openConnectEnd(ctx context.Context, e *runEnv, nw Network, p report.Params) (*connectEnd, error) {
	if e.far == nil {
		srv, err := startEchoServer(ctx, e, nw, p.Size)
		if err != nil {
			return nil, err
		}
		addr := srv.addr()
		return &connectEnd{
			dial:     func(ctx context.Context) (Transport, error) { return nw.Dial(ctx, addr) },
			accepted: srv.acceptedCount,
			stop: func(context.Context) (int, []string, *float64) {
				var warns []string
				if err := srv.stop(); err != nil {
					warns = append(warns, fmt.Sprintf("server: %v", err))
				}
				return srv.acceptedCount(), warns, nil
			},
		}, nil
	}
	dur := e.warmup + time.Duration(p.DurationS*float64(time.Second))
	if p.Count > 0 {
		dur = 0
	}
	fl, err := openFarListen(ctx, e, report.ExpConnect, nw, p.Size, dur)
	if err != nil {
		return nil, err
	}
	return &connectEnd{dial: fl.dial, stop: func(ctx context.Context) (int, []string, *float64) {
		r := fl.finish(ctx)
		return r.ServerSockets, r.Warnings, r.CPUSec
	}}, nil
}
