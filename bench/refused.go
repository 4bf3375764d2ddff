package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpRefused,
		section: report.Section{Title: "Refused connections (refused)", Layout: report.LayoutTable},
		help:    "talk to a port nobody listens on: TCP's dial fails at once with ECONNREFUSED; UDP's send succeeds and only ICMP tells, later",
		place:   10, run: runRefused, summary: refusedSummary,
		properties: []report.Rule{report.RuleRefused},
		far:        &FarHalf{OnePath: true, Serve: serveRefused}})
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
// The closed port is the server host's: the server half (ServeRefused) finds one of
// its own host (in remote mode, from the server's --data-ports, on the address the
// client reaches it at) and answers every request on the cell's data path with it;
// the client half then measures, by refusedAt, against the server's host and that
// port. No message names an address: the server half only ever tells a port of its
// own host, and the host is the one the client already talks to.
func runRefused(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	// The server half lives while the port is asked for and the measurement runs.
	dur := refusedAsks*e.timeout + 2*refusedWait
	srv, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpRefused, Transport: nw.Name(), Size: p.Size, Streams: 1, Duration: dur}, serverHalf{half: serveRefused})
	if err != nil {
		return outcome{}, err
	}
	defer srv.finish(ctx)
	host, err := srv.remoteAddr(report.ExpRefused)
	if err != nil {
		return outcome{}, err
	}
	port, err := askClosedPort(e, srv.t)
	if err != nil {
		return outcome{}, fmt.Errorf("the server's closed port: %w", err)
	}
	o := refusedAt(ctx, e, nw, p, net.JoinHostPort(host.Addr().String(), strconv.Itoa(int(port))))
	r := srv.finish(ctx)
	o.warns = append(o.warns, r.Warnings...)
	o.m.ServerCPUSec = r.CPUSec
	return o, nil
}

// refusedAt dials addr, where nobody listens for nw, sends one message, and records
// when and how the transport says so.
func refusedAt(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, addr string) outcome {
	obs := map[string]any{report.ObsAddress.Key(): addr}
	var m report.Metrics
	msg := make([]byte, p.Size)
	wire.FillPayload(msg[wire.HeaderLen:], e.seed, 0)
	wire.PutHeader(msg, wire.Header{Kind: wire.KindRequest, Run: e.run, Len: uint32(p.Size), PayloadCRC: wire.PayloadCRC(msg[wire.HeaderLen:])})

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
	if u, ok := nw.(transport.UnconnectedSender); ok {
		sendErr, laterErr := u.SendUnconnected(addr, msg, refusedWait/4)
		report.Set(obs, report.ObsUnconnectedSendError, errText(sendErr))
		report.Set(obs, report.ObsUnconnectedTold, laterErr != nil)
	}
	return outcome{m: m, observed: obs}
}

// waitRefused reads from t until an error other than a timeout arrives, sending
// again every 50 ms (an error may surface on either call), for at most refusedWait.
// It returns how long after sent the error came, and the error; nil if none came.
func waitRefused(t transport.Transport, sent time.Time) (int64, error) {
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
		if _, err := t.Recv(bufs, sizes); err != nil && !transport.IsTimeout(err) {
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
func closedPort(ctx context.Context, e *runEnv, nw transport.Network) (string, error) {
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

// refusedAsks bounds the requests for the far end's closed port; each waits
// e.timeout for its answer (a datagram path may lose one).
const refusedAsks = 5

// askClosedPort asks the far end over t for its closed port: a header-only request
// of the run, answered by the same message as a reply whose seq is the port. It asks
// up to refusedAsks times, each waiting e.timeout.
func askClosedPort(e *runEnv, t transport.Transport) (uint16, error) {
	req := make([]byte, wire.HeaderLen)
	bufs, sizes := makeBufs(1, 64<<10), make([]int, 1)
	var last error
	for ask := range uint64(refusedAsks) {
		wire.PutHeader(req, wire.Header{Kind: wire.KindRequest, Run: e.run, Len: wire.HeaderLen, Seq: ask, SendNs: e.now(), PayloadCRC: wire.PayloadCRC(nil)})
		if _, err := t.Send([][]byte{req}); err != nil {
			return 0, fmt.Errorf("send request %d: %w", ask, err)
		}
		deadline := time.Now().Add(e.timeout)
		if err := t.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		for range 64 { // bounded: stray messages cannot hold it
			n, err := t.Recv(bufs, sizes)
			if n > 0 {
				h, derr := wire.DecodeHeader(bufs[0][:sizes[0]])
				switch {
				case derr != nil:
					last = derr
					continue
				case h.Kind != wire.KindReply || h.Run != e.run:
					last = fmt.Errorf("a %v message of run %x, want a reply of run %x", h.Kind, h.Run, e.run)
					continue
				case h.Seq == 0 || h.Seq > 65535:
					return 0, fmt.Errorf("the far end answered port %d, want 1..65535", h.Seq)
				}
				return uint16(h.Seq), nil
			}
			if err != nil {
				if transport.IsTimeout(err) {
					last = fmt.Errorf("no answer within %v", e.timeout)
					break
				}
				return 0, fmt.Errorf("receive the answer to request %d: %w", ask, err)
			}
		}
	}
	return 0, fmt.Errorf("%d requests: %w", refusedAsks, last)
}

// serveRefused is refused's server half: ServeRefused on every endpoint, with a
// closed port of the server's host (env.ClosedPort: in remote mode one of the
// server's --data-ports, on one host one just bound and released).
func serveRefused(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error) {
	port, err := env.ClosedPort()
	if err != nil {
		return FarResult{}, err
	}
	return serveEach(func(ctx context.Context, spec FarSpec, t transport.Transport) error {
		return ServeRefused(ctx, t, spec.Size, port)
	})(ctx, env, spec, ts)
}

// ServeRefused is the server half of refused at the far end. port is a port of this
// host on which nobody listens for t's transport; ServeRefused answers every request
// of bench's that arrives on t with the same message as a reply whose seq is port
// (so an answer is never larger than what asked for it), and ignores anything else,
// until ctx ends or t is closed. size is the largest message.
func ServeRefused(ctx context.Context, t transport.Transport, size int, port uint16) error {
	if size < wire.HeaderLen || port == 0 {
		return fmt.Errorf("bench: ServeRefused: want size ≥ %d bytes and a port, got %d bytes, port %d", wire.HeaderLen, size, port)
	}
	_, err := serveMessages(ctx, t, 1, size, func(msg []byte) ([]byte, bool) {
		h, derr := wire.DecodeHeader(msg)
		if derr != nil || h.Kind != wire.KindRequest {
			return nil, false
		}
		h.Kind, h.Seq = wire.KindReply, uint64(port)
		wire.PutHeader(msg, h)
		return msg, false
	})
	return err
}

// refusedSummary says when and how the transport reported that nobody listens:
// "refused at dial after 35.0 us", "ECONNREFUSED 120 us after the send", or
// "no refusal within 1.00 s".
func refusedSummary(r *report.Result) string {
	o := r.Observed
	d := obsDur(o, report.ObsDetectNs)
	refused, _ := report.Get(o, report.ObsRefused)
	switch at, _ := report.Get(o, report.ObsRefusedAt); at {
	case "dial":
		if refused {
			return "refused at dial after " + d
		}
		return "dial failed after " + d
	case "after send":
		if refused {
			return "dial succeeded; ECONNREFUSED " + d + " after the send"
		}
		return "dial succeeded; send error " + d + " after the send"
	case "never":
		return "dial and send succeeded; no refusal within " + obsDur(o, report.ObsWaitedNs)
	}
	return fmt.Sprintf("%d observations", len(o))
}
