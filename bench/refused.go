package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpRefused,
		help:  "talk to a port nobody listens on: TCP's dial fails at once with ECONNREFUSED; UDP's send succeeds and only ICMP tells, later",
		place: 10, run: runRefused})
}

// refusedWait bounds how long a transport is given to report that nobody listens.
const refusedWait = time.Second

// runRefused talks to a port nobody listens on. A connection-oriented transport
// finds out while connecting: the peer's kernel answers the handshake with a reset,
// and the dial fails with ECONNREFUSED at once. A datagram transport has no
// handshake: the dial (a local connect) and the first send succeed, and only the ICMP
// port-unreachable the peer's kernel sends back tells a connected socket, on a later
// call, that nobody is there. An unconnected socket is told nothing at all.
//
// In remote mode the closed port is the far host's (refusedfar.go); what is measured
// is the same, by refusedAt.
func runRefused(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	if e.far != nil {
		return runRefusedFar(ctx, e, nw, p)
	}
	addr, err := closedPort(ctx, e, nw)
	if err != nil {
		return outcome{}, err
	}
	return refusedAt(ctx, e, nw, p, addr), nil
}

// refusedAt dials addr, where nobody listens for nw, sends one message, and records
// when and how the transport says so.
func refusedAt(ctx context.Context, e *runEnv, nw Network, p report.Params, addr string) outcome {
	obs := map[string]any{report.ObsAddress.Key(): addr}
	var m report.Metrics
	msg := make([]byte, p.Size)
	FillPayload(msg[HeaderLen:], e.seed, 0)
	PutHeader(msg, Header{Kind: KindRequest, Run: e.run, Len: uint32(p.Size), PayloadCRC: PayloadCRC(msg[HeaderLen:])})

	start := time.Now()
	t, err := nw.Dial(ctx, addr)
	dialNs := time.Since(start).Nanoseconds()
	report.Set(obs, report.ObsDialNs, dialNs)
	if err != nil {
		report.Set(obs, report.ObsDialError, errText(err))
		report.Set(obs, report.ObsRefused, errors.Is(err, syscall.ECONNREFUSED))
		report.Set(obs, report.ObsRefusedAt, "dial")
		report.Set(obs, report.ObsDetectNs, dialNs)
		return outcome{m: m, observed: obs}
	}
	defer t.Close()
	report.Set(obs, report.ObsDialError, "")

	// The dial succeeded: send, then wait for the kernel to pass on what came back.
	sendStart := time.Now()
	_, serr := t.Send([][]byte{msg})
	m.SentMsgs, m.SentBytes = 1, uint64(p.Size)
	report.Set(obs, report.ObsFirstSendError, errText(serr))
	detectErr, detectNs := serr, time.Since(sendStart).Nanoseconds()
	if serr == nil {
		detectNs, detectErr = waitRefused(t, sendStart)
	}
	report.Set(obs, report.ObsRefused, errors.Is(detectErr, syscall.ECONNREFUSED))
	report.Set(obs, report.ObsRefusedError, errText(detectErr))
	if detectErr != nil {
		report.Set(obs, report.ObsRefusedAt, "after send")
		report.Set(obs, report.ObsDetectNs, detectNs)
	} else {
		report.Set(obs, report.ObsRefusedAt, "never")
		report.Set(obs, report.ObsWaitedNs, refusedWait.Nanoseconds())
	}
	m.LostMsgs = 1

	// The same send from an unconnected socket, where the capability exists.
	if u, ok := nw.(unconnectedSender); ok {
		sendErr, laterErr := u.sendUnconnected(addr, msg, refusedWait/4)
		report.Set(obs, report.ObsUnconnectedSendError, errText(sendErr))
		report.Set(obs, report.ObsUnconnectedTold, laterErr != nil)
	}
	return outcome{m: m, observed: obs}
}

// waitRefused reads from t until an error other than a timeout arrives, sending
// again every 50 ms (an error may surface on either call), for at most refusedWait.
// It returns how long after sent the error came, and the error; nil if none came.
func waitRefused(t Transport, sent time.Time) (int64, error) {
	bufs, sizes := makeBufs(1, 64<<10), make([]int, 1)
	deadline := sent.Add(refusedWait)
	for time.Now().Before(deadline) {
		d := time.Now().Add(pollInterval)
		if d.After(deadline) {
			d = deadline
		}
		if err := t.SetReadDeadline(d); err != nil {
			return time.Since(sent).Nanoseconds(), err
		}
		if _, err := t.Recv(bufs, sizes); err != nil && !isTimeout(err) {
			return time.Since(sent).Nanoseconds(), err
		}
		if _, err := t.Send([][]byte{bufs[0][:0]}); err != nil {
			return time.Since(sent).Nanoseconds(), err
		}
	}
	return 0, nil
}

// closedPort returns an address on which nobody listens for nw: a port that was
// just bound and released.
func closedPort(ctx context.Context, e *runEnv, nw Network) (string, error) {
	host, _, err := net.SplitHostPort(e.address)
	if err != nil {
		return "", err
	}
	l, err := nw.Listen(ctx, net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("find a closed port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// unconnectedSender is a Network whose sockets can send without connecting first
// (UDP's sendto). Connection-oriented transports have no such thing.
type unconnectedSender interface {
	// sendUnconnected sends msg once from a fresh unconnected socket, then listens
	// for wait for any error the kernel passes back.
	sendUnconnected(addr string, msg []byte, wait time.Duration) (sendErr, laterErr error)
}

// sendUnconnected uses the standard library's unconnected UDP socket: the point is
// what the kernel tells a plain sendto caller, which is nothing.
func (udpNetwork) sendUnconnected(addr string, msg []byte, wait time.Duration) (sendErr, laterErr error) {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err, nil
	}
	network := "udp6"
	if dst.IP.To4() != nil {
		network = "udp4"
	}
	c, err := net.ListenUDP(network, nil) // any local address: dst may be another host's
	if err != nil {
		return err, nil
	}
	defer c.Close()
	if _, err := c.WriteTo(msg, dst); err != nil {
		return err, nil
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64<<10)
	_, _, err = c.ReadFrom(buf)
	if err != nil && !isTimeout(err) {
		return nil, err
	}
	return nil, nil
}
