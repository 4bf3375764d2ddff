package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// close against a far end. The clocks of two hosts differ, so everything is
// measured on this side, and the roles of peerClose turn round: the far end closes,
// this side reads. The far half (ServeClose) echoes requests and closes what a close
// request (a KindEnd message) names.
//
// Peer close: the client measures from sending the close request to seeing end of
// stream, and subtracts the round trip of an ordinary echo on the same path measured
// just before (the least of closeEchoes): what is left is how long after the close
// the reader knew, peerClose's figure. Both raw figures are reported too.
//
// Listener close: remote mode's TCP data listener closes as soon as the path's
// connection arrived, so the far TCP endpoint is an accepted connection with no
// listener: it keeps answering, and a new dial to the data port is refused. A UDP
// path's one socket is its listener: the far half closes it when asked, and then
// neither the existing client nor a new one is answered.

// What a close request (a KindEnd message) asks the far half to close, in its flow.
const (
	closeEndpoint uint32 = 0 // the endpoint it came on: peer close
	closeListener uint32 = 1 // the listening socket, where the endpoint is one (UDP)
)

// closeEchoes is how many echoes measure the round trip before the peer close.
const closeEchoes = 5

// runCloseFar is close with the server halves at the far end: one far cell for each
// part, since a far UDP half that closed has no socket left.
func runCloseFar(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	obs := map[string]any{}
	var o outcome
	r, err := peerCloseFar(ctx, e, nw, p, obs, &o.m)
	o.addFar(r)
	if err != nil {
		return outcome{}, fmt.Errorf("peer close: %w", err)
	}
	r, err = listenerCloseFar(ctx, e, nw, p, obs, &o.m)
	o.addFar(r)
	if err != nil {
		return outcome{}, fmt.Errorf("listener close: %w", err)
	}
	o.m.ServerSockets = r.ServerSockets
	o.m.SentBytes, o.m.RecvBytes = o.m.SentMsgs*uint64(p.Size), o.m.RecvMsgs*uint64(p.Size)
	o.observed = obs
	return o, nil
}

// closeFarTime bounds one far close cell: the echoes, the wait for the end of
// stream, and the listener's requests.
func closeFarTime(e *runEnv) time.Duration { return closeWait + (closeEchoes+5)*e.timeout }

// sendClose sends c's message as a close request naming what, unanswered.
func sendClose(c *requester, t Transport, what uint32, m *report.Metrics) error {
	PutHeader(c.req, Header{Kind: KindEnd, Run: c.e.run, Flow: what, Len: uint32(len(c.req)), Seq: c.seq, SendNs: c.e.now(), PayloadCRC: c.pcrc})
	c.seq++
	c.out[0] = c.req
	m.SentMsgs++
	if _, err := t.Send(c.out); err != nil {
		return fmt.Errorf("send the close request: %w", err)
	}
	return nil
}

// peerCloseFar: after closeEchoes echoes, the client asks the far half to close its
// endpoint and reads until end of stream, or gives up after closeWait.
func peerCloseFar(ctx context.Context, e *runEnv, nw Network, p report.Params, obs map[string]any, m *report.Metrics) (r FarResult, err error) {
	fo, err := openFarOne(ctx, e, report.ExpClose, nw, p.Size, closeFarTime(e))
	if err != nil {
		return FarResult{}, err
	}
	defer func() { r = fo.finish(ctx) }()
	t := fo.t
	c := newRequester(e, p.Size)
	rtt := time.Duration(-1)
	for range closeEchoes {
		before, start := m.RecvMsgs, time.Now()
		if err := c.roundTrip(t, KindRequest, m, nil, -1); err != nil {
			return FarResult{}, err
		}
		if d := time.Since(start); m.RecvMsgs > before && (rtt < 0 || d < rtt) {
			rtt = d
		}
	}
	if rtt < 0 {
		return FarResult{}, fmt.Errorf("none of %d echoes answered within %v before the close", closeEchoes, e.timeout)
	}
	report.Set(obs, report.ObsEchoRTTNs, rtt.Nanoseconds())

	sent := time.Now()
	if err := sendClose(c, t, closeEndpoint, m); err != nil {
		return FarResult{}, err
	}
	bufs, sizes := makeBufs(1, p.Size), make([]int, 1)
	deadline := sent.Add(closeWait)
	var ended error
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
		case err == nil || isTimeout(err):
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			ended = err
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
	report.Set(obs, report.ObsPeerCloseRequestToEOFNs, raw.Nanoseconds())
	// Two single samples of nearly the same path: the difference can come out a
	// little below zero, which means "at once".
	report.Set(obs, report.ObsPeerCloseDetectNs, max(0, raw-rtt).Nanoseconds())
	report.Set(obs, report.ObsPeerCloseResult, endText(ended))
	return FarResult{}, nil
}

// listenerCloseFar: a client is answered; the far half is asked to close its
// listening socket; is the client still answered, and can a new client of the data
// port connect?
func listenerCloseFar(ctx context.Context, e *runEnv, nw Network, p report.Params, obs map[string]any, m *report.Metrics) (r FarResult, err error) {
	fo, err := openFarOne(ctx, e, report.ExpClose, nw, p.Size, closeFarTime(e))
	if err != nil {
		return FarResult{}, err
	}
	defer func() { r = fo.finish(ctx) }()
	c := newRequester(e, p.Size)
	answered := func(t Transport) (bool, error) {
		before := m.RecvMsgs
		err := c.roundTrip(t, KindRequest, m, nil, -1)
		return m.RecvMsgs > before, err
	}
	ok, err := answered(fo.t)
	if err != nil || !ok {
		return FarResult{}, fmt.Errorf("no answer before the listener closed (err %v)", err)
	}
	if err := sendClose(c, fo.t, closeListener, m); err != nil {
		return FarResult{}, err
	}
	ok, err = answered(fo.t)
	report.Set(obs, report.ObsListenerClosedExistingAnswered, ok && err == nil)
	newClient(ctx, e, nw, netip.AddrPortFrom(fo.remote.Addr().Unmap(), fo.remote.Port()).String(), answered, obs)
	m.LostMsgs = m.Timeouts
	return FarResult{}, nil
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
func ServeClose(ctx context.Context, t Transport, size, batch int, listener bool) error {
	if size < HeaderLen {
		return fmt.Errorf("bench: ServeClose: size must be at least %d bytes, got %d", HeaderLen, size)
	}
	closing, err := serveMessages(ctx, t, batch, size, func(msg []byte) ([]byte, bool) {
		if h, derr := DecodeHeader(msg); derr == nil && h.Kind == KindEnd {
			return nil, h.Flow == closeEndpoint || listener
		}
		return msg, false
	})
	if err != nil || !closing {
		return err
	}
	if cerr := t.Close(); cerr != nil && !isClosed(cerr) {
		return cerr
	}
	return nil
}
