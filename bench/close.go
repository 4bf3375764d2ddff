package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpClose,
		section: report.Section{Title: "Peer close (close)", Layout: report.LayoutTable},
		help:    "the peer closes: a TCP reader sees EOF; a UDP reader sees nothing. Then the server closes its listening socket",
		place:   20, run: runClose, requestResponse: true, summary: closeSummary,
		properties: []report.Rule{report.RuleClose},
		far: &FarHalf{OnePath: true, Serve: serveEach(func(ctx context.Context, spec FarSpec, t transport.Transport) error {
			// A connectionless transport's data socket (UDP) serves the one client and
			// is the cell's listener too; a connected one's listener (TCP) closed when
			// the connection arrived.
			return ServeClose(ctx, t, spec.Size, farBatch(spec), !transport.CapsOf(spec.Transport).Connected)
		})}})
}

// closeWait bounds how long the reader waits to learn that its peer has gone.
const closeWait = time.Second

// runClose shows what a reader learns when its peer goes away. A connection-oriented
// transport carries the close itself (TCP's FIN): the reader's receive returns end
// of stream within microseconds. A datagram transport has no close to carry: the
// reader hears nothing and can only give up at a timeout of its own.
//
// Then it closes a server's listening socket while a client is connected: over TCP,
// new clients are refused while the accepted connection still answers; over UDP the
// one socket is the listener, so every client loses it at once.
//
// The server half (ServeClose) echoes requests and closes what a close request (a
// KindEnd message) names; the client half reads. One server half for each part,
// since a UDP half that closed has no socket left.
//
// Peer close: the client asks the server half to close its endpoint and reads until
// end of stream. On one clock (the server half in this process) the time from the
// server's close to the reader's end of stream is measured as it is. Across hosts the
// client measures from sending the close request to seeing end of stream, and
// subtracts the round trip of an ordinary echo on the same path measured just before
// (the least of closeEchoes): both raw figures are reported too.
//
// Listener close: a connected transport's listener (TCP) closes as soon as the
// client's connection arrived (remote mode's data listener does; so does the server
// half in this process), so the server's endpoint is an accepted connection with no
// listener: it keeps answering, and a new dial to its port is refused. A
// connectionless transport's one socket (UDP) is its listener: the server half
// closes it when asked, and then neither the existing client nor a new one is
// answered.
func runClose(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	obs := map[string]any{}
	var o outcome
	r, err := peerClose(ctx, e, nw, p, obs, &o.m)
	o.addFar(r)
	if err != nil {
		return outcome{}, fmt.Errorf("peer close: %w", err)
	}
	r, err = listenerClose(ctx, e, nw, p, obs, &o.m)
	o.addFar(r)
	if err != nil {
		return outcome{}, fmt.Errorf("listener close: %w", err)
	}
	o.m.ServerSockets = r.ServerSockets
	o.m.SentBytes, o.m.RecvBytes = o.m.SentMsgs*uint64(p.Size), o.m.RecvMsgs*uint64(p.Size)
	o.observed = obs
	return o, nil
}

// What a close request (a KindEnd message) asks the server half to close, in its flow.
const (
	closeEndpoint uint32 = 0 // the endpoint it came on: peer close
	closeListener uint32 = 1 // the listening socket, where the endpoint is one (UDP)
)

// closeEchoes is how many echoes measure the round trip before the peer close.
const closeEchoes = 5

// openClose starts one part's server half, ServeClose, for at most the echoes, the
// wait for the end of stream and the listener's requests. In this process, closed
// is told (on the server's clock, e.now) just before it closes its endpoint.
func openClose(ctx context.Context, e *runEnv, nw transport.Network, size int, closed func(at int64)) (*reqPeer, error) {
	listener := !transport.CapsOf(nw.Name()).Connected // the endpoint is the listener: UDP's one socket
	half := serverHalf{oneClient: !listener, serve: func(ctx context.Context, t transport.Transport) error {
		return serveClose(ctx, t, size, e.batch, listener, func() { closed(e.now()) })
	}}
	dur := closeWait + (closeEchoes+5)*e.timeout
	return openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpClose, Transport: nw.Name(), Size: size, Streams: 1, Duration: dur}, half)
}

// sendClose sends c's message as a close request naming what, unanswered.
func sendClose(c *requester, t transport.Transport, what uint32, m *report.Metrics) error {
	wire.PutHeader(c.req, wire.Header{Kind: wire.KindEnd, Run: c.e.run, Flow: what, Len: uint32(len(c.req)), Seq: c.seq, SendNs: c.e.now(), PayloadCRC: c.pcrc})
	c.seq++
	c.out[0] = c.req
	m.SentMsgs++
	if _, err := t.Send(c.out); err != nil {
		return fmt.Errorf("send the close request: %w", err)
	}
	return nil
}

// peerClose: after closeEchoes echoes, the client asks the server half to close its
// endpoint and reads until end of stream, or gives up after closeWait.
func peerClose(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, obs map[string]any, m *report.Metrics) (r FarResult, err error) {
	closedAt := make(chan int64, 1) // one clock: when the server half closed, ns since e.epoch
	srv, err := openClose(ctx, e, nw, p.Size, func(at int64) {
		select {
		case closedAt <- at:
		default:
		}
	})
	if err != nil {
		return FarResult{}, err
	}
	defer func() { r = srv.finish(ctx) }()
	oneClock := srv.local != nil
	t := srv.t
	c := newRequester(e, p.Size)
	rtt := time.Duration(-1)
	for range closeEchoes {
		before, start := m.RecvMsgs, time.Now()
		if err := c.roundTrip(t, wire.KindRequest, m, nil, -1); err != nil {
			return FarResult{}, err
		}
		if d := time.Since(start); m.RecvMsgs > before && (rtt < 0 || d < rtt) {
			rtt = d
		}
	}
	if rtt < 0 {
		return FarResult{}, fmt.Errorf("none of %d echoes answered within %v before the close", closeEchoes, e.timeout)
	}
	if !oneClock {
		report.Set(obs, report.ObsEchoRTTNs, rtt.Nanoseconds())
	}

	sent := time.Now()
	if err := sendClose(c, t, closeEndpoint, m); err != nil {
		return FarResult{}, err
	}
	bufs, sizes := makeBufs(1, p.Size), make([]int, 1)
	deadline := sent.Add(closeWait)
	var ended error
	var endedAt int64
	for ended == nil && time.Now().Before(deadline) { // each Recv bounded by pollInterval
		d := time.Now().Add(pollInterval)
		if d.After(deadline) {
			d = deadline
		}
		if err := t.SetReadDeadline(d); err != nil {
			return FarResult{}, err
		}
		n, err := t.Recv(bufs, sizes)
		if n > 0 {
			m.LateMsgs++ // nothing but the end should come
		}
		switch {
		case err == nil || transport.IsTimeout(err):
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			ended, endedAt = err, e.now()
		default:
			return FarResult{}, fmt.Errorf("waiting for the end of stream: %w", err)
		}
	}
	raw := time.Since(sent)
	if ended == nil {
		report.Set(obs, report.ObsPeerCloseSeen, false)
		report.Set(obs, report.ObsPeerCloseWaitedNs, closeWait.Nanoseconds())
		report.Set(obs, report.ObsPeerCloseResult, fmt.Sprintf("nothing: still waiting after %v", closeWait))
		return FarResult{}, nil
	}
	report.Set(obs, report.ObsPeerCloseSeen, true)
	report.Set(obs, report.ObsPeerCloseResult, endText(ended))
	if oneClock {
		select {
		case at := <-closedAt: // told before the close, so before the end of stream
			report.Set(obs, report.ObsPeerCloseDetectNs, endedAt-at)
			return FarResult{}, nil
		default:
			return FarResult{}, errors.New("end of stream before the server half closed")
		}
	}
	report.Set(obs, report.ObsPeerCloseRequestToEOFNs, raw.Nanoseconds())
	// Two single samples of nearly the same path: the difference can come out a
	// little below zero, which means "at once".
	report.Set(obs, report.ObsPeerCloseDetectNs, max(0, raw-rtt).Nanoseconds())
	return FarResult{}, nil
}

func endText(err error) string {
	if errors.Is(err, io.EOF) {
		return "end of stream (EOF)"
	}
	return "reset: " + err.Error()
}

// listenerClose: a client is answered; the server half is asked to close its
// listening socket; is the client still answered, and can a new client of its port
// connect?
func listenerClose(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, obs map[string]any, m *report.Metrics) (r FarResult, err error) {
	srv, err := openClose(ctx, e, nw, p.Size, func(int64) {})
	if err != nil {
		return FarResult{}, err
	}
	defer func() { r = srv.finish(ctx) }()
	addr, err := srv.remoteAddr(report.ExpClose)
	if err != nil {
		return FarResult{}, err
	}
	c := newRequester(e, p.Size)
	answered := func(t transport.Transport) (bool, error) {
		before := m.RecvMsgs
		err := c.roundTrip(t, wire.KindRequest, m, nil, -1)
		return m.RecvMsgs > before, err
	}
	ok, err := answered(srv.t)
	if err != nil || !ok {
		return FarResult{}, fmt.Errorf("no answer before the listener closed (err %v)", err)
	}
	if err := sendClose(c, srv.t, closeListener, m); err != nil {
		return FarResult{}, err
	}
	ok, err = answered(srv.t)
	report.Set(obs, report.ObsListenerClosedExistingAnswered, ok && err == nil)
	newClient(ctx, e, nw, addr.String(), answered, obs)
	m.LostMsgs = m.Timeouts
	return FarResult{}, nil
}

// newClient dials addr, whose listener has closed, and records whether the dial is
// refused, or else whether a request is answered.
func newClient(ctx context.Context, e *runEnv, nw transport.Network, addr string, answered func(transport.Transport) (bool, error), obs map[string]any) {
	t2, err := nw.Dial(ctx, addr)
	switch {
	case err != nil:
		report.Set(obs, report.ObsListenerClosedNewClient, "dial failed: "+err.Error())
		report.Set(obs, report.ObsListenerClosedNewRefused, errors.Is(err, syscall.ECONNREFUSED))
	default:
		defer t2.Close()
		ok, rerr := answered(t2)
		switch {
		case ok:
			report.Set(obs, report.ObsListenerClosedNewClient, "answered")
		case rerr != nil:
			report.Set(obs, report.ObsListenerClosedNewClient, "request failed: "+rerr.Error())
		default:
			report.Set(obs, report.ObsListenerClosedNewClient, fmt.Sprintf("dial succeeded; request unanswered after %v", e.timeout))
		}
		report.Set(obs, report.ObsListenerClosedNewRefused, false)
	}
}

// ServeClose is the server half of close at the far end: it returns every message
// it receives on t to its sender, as ServeEcho does, but for close requests (KindEnd
// messages of bench's), which it never answers. A request to close the endpoint
// closes t; one to close the listener closes t when t is its own listener (a UDP
// socket that serves every client: listener true), and is ignored otherwise (a
// connection whose listener is closed already, as remote mode's TCP data path's is).
// Messages after a close request in the same batch are dropped unanswered, as
// the closed socket would drop them. It returns when t is closed, or ctx ends. size
// is the largest message; batch the most messages per call.
func ServeClose(ctx context.Context, t transport.Transport, size, batch int, listener bool) error {
	return serveClose(ctx, t, size, batch, listener, nil)
}

// serveClose is ServeClose telling closing, when not nil, just before it closes t.
func serveClose(ctx context.Context, t transport.Transport, size, batch int, listener bool, closing func()) error {
	if size < wire.HeaderLen {
		return fmt.Errorf("bench: ServeClose: size must be at least %d bytes, got %d", wire.HeaderLen, size)
	}
	stopped, err := serveMessages(ctx, t, batch, size, func(msg []byte) ([]byte, bool) {
		if h, derr := wire.DecodeHeader(msg); derr == nil && h.Kind == wire.KindEnd {
			return nil, h.Flow == closeEndpoint || listener
		}
		return msg, false
	})
	if err != nil || !stopped {
		return err
	}
	if closing != nil {
		closing()
	}
	if cerr := t.Close(); cerr != nil && !isClosed(cerr) {
		return cerr
	}
	return nil
}

// closeSummary says what the reader learned of its peer's close, and whether the
// connected client was still answered once the listener closed.
func closeSummary(r *report.Result) string {
	o := r.Observed
	var peer string
	seen, _ := report.Get(o, report.ObsPeerCloseSeen)
	switch res, _ := report.Get(o, report.ObsPeerCloseResult); {
	case !seen:
		peer = "peer close: nothing within " + obsDur(o, report.ObsPeerCloseWaitedNs)
	case strings.Contains(res, "EOF"):
		peer = "peer close: EOF after " + obsDur(o, report.ObsPeerCloseDetectNs)
	default:
		peer = "peer close: reset after " + obsDur(o, report.ObsPeerCloseDetectNs)
	}
	switch answered, ok := report.Get(o, report.ObsListenerClosedExistingAnswered); {
	case ok && answered:
		return peer + "; listener closed: client still answered"
	case ok:
		return peer + "; listener closed: client unanswered"
	}
	return peer
}
