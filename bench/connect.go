package bench

import (
	"context"
	"fmt"
	"time"
)

// runConnect measures what it costs to get a first answer from a server nobody has
// talked to yet. One transaction: open a client endpoint (TCP: the three-way
// handshake; UDP: a local socket, no packet), send one request, read one reply,
// close. The time to first answer runs from the start of the dial to the reply;
// transactions/s includes the close. The server's endpoint count shows the other
// half of the claim: TCP accepts a socket per client, UDP answers all from one.
func runConnect(ctx context.Context, e *runEnv, nw Network, p Params) (Metrics, []string, error) {
	var warns []string
	srv, err := startEchoServer(ctx, e, nw, p.Size)
	if err != nil {
		return Metrics{}, nil, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	addr := srv.addr()
	c := newRequester(e, p.Size)

	var dialErrs uint64
	var firstErr error
	transact := func(m *Metrics, lat *Latency) error {
		from := e.now()
		t, err := nw.Dial(ctx, addr)
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
		stop := context.AfterFunc(ctx, func() { t.Close() })
		err = c.roundTrip(t, KindRequest, m, lat, from)
		stop()
		if cerr := t.Close(); err == nil && cerr != nil && !isClosed(cerr) {
			err = cerr
		}
		return err
	}

	var warm Metrics
	if e.warmup > 0 {
		until := time.Now().Add(e.warmup)
		for n := 0; n < 1000 && time.Now().Before(until) && ctx.Err() == nil; n++ {
			if err := transact(&warm, nil); err != nil {
				return Metrics{}, nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	socketsBefore := srv.acceptedCount()
	dialErrs, firstErr = 0, nil

	u0, uerr := ReadUsage()
	lat := NewLatency()
	var m Metrics
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
			return Metrics{}, nil, fmt.Errorf("transaction %d: %w", m.SentMsgs, err)
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Metrics{}, nil, fmt.Errorf("stopped after %d transactions: %w", m.SentMsgs, err)
	}
	u1, _ := ReadUsage()
	socketsAfter := srv.acceptedCount()
	if err := srv.stop(); err != nil {
		warns = append(warns, fmt.Sprintf("server: %v", err))
	}
	if dialErrs > 0 {
		warns = append(warns, fmt.Sprintf("%d dials failed (counted lost); first: %v", dialErrs, firstErr))
	}

	finishRequests(&m, lat, p.Size, elapsed)
	if uerr == nil {
		m.setUsage(u1.Sub(u0), 0) // no bytes: a connection's cost is per transaction
	}
	// Server sockets the measured transactions needed: TCP one per client, UDP none
	// beyond the one it had (then the figure is that one).
	m.ServerSockets = max(socketsAfter-socketsBefore, min(socketsAfter, 1))
	return m, warns, nil
}
