package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpClose,
		help:  "the peer closes: a TCP reader sees EOF; a UDP reader sees nothing. Then the server closes its listening socket",
		place: 20, run: runClose})
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
// In remote mode the far end closes and this side reads (closefar.go).
func runClose(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	if e.far != nil {
		return runCloseFar(ctx, e, nw, p)
	}
	obs := map[string]any{}
	var m report.Metrics
	if err := peerClose(ctx, e, nw, p, obs, &m); err != nil {
		return outcome{}, fmt.Errorf("peer close: %w", err)
	}
	if err := listenerClose(ctx, e, nw, p, obs, &m); err != nil {
		return outcome{}, fmt.Errorf("listener close: %w", err)
	}
	return outcome{m: m, observed: obs}, nil
}

// peerClose: the client sends one message, the server reads it, the client closes;
// how long until the server's reader knows?
func peerClose(ctx context.Context, e *runEnv, nw Network, p report.Params, obs map[string]any, m *report.Metrics) error {
	got := make(chan struct{})   // closed when the server has read the message
	ended := make(chan error, 1) // the reader's end of stream, with the error it saw
	var gotOnce sync.Once
	srv, err := startServer(ctx, e, nw, func(ctx context.Context, t Transport) error {
		bufs, sizes := makeBufs(1, p.Size), make([]int, 1)
		for ctx.Err() == nil {
			if err := t.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
				return err
			}
			n, err := t.Recv(bufs, sizes)
			if n > 0 {
				gotOnce.Do(func() { close(got) })
			}
			switch {
			case err == nil || isTimeout(err):
			case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
				ended <- err
				return nil
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer srv.stop()
	t, err := nw.Dial(ctx, srv.addr())
	if err != nil {
		return err
	}
	msg := make([]byte, p.Size)
	if _, err := t.Send([][]byte{msg}); err != nil {
		t.Close()
		return fmt.Errorf("send: %w", err)
	}
	m.SentMsgs, m.SentBytes = 1, uint64(p.Size)
	select {
	case <-got:
		m.RecvMsgs, m.RecvBytes = 1, uint64(p.Size)
	case <-time.After(closeWait):
		t.Close()
		return errors.New("the server never read the first message")
	}
	closedAt := time.Now()
	if err := t.Close(); err != nil {
		return err
	}
	select {
	case err := <-ended:
		report.Set(obs, report.ObsPeerCloseSeen, true)
		report.Set(obs, report.ObsPeerCloseDetectNs, time.Since(closedAt).Nanoseconds())
		report.Set(obs, report.ObsPeerCloseResult, endText(err))
	case <-time.After(closeWait):
		report.Set(obs, report.ObsPeerCloseSeen, false)
		report.Set(obs, report.ObsPeerCloseWaitedNs, closeWait.Nanoseconds())
		report.Set(obs, report.ObsPeerCloseResult, fmt.Sprintf("nothing: still waiting after %v", closeWait))
	}
	return srv.stop()
}

func endText(err error) string {
	if errors.Is(err, io.EOF) {
		return "end of stream (EOF)"
	}
	return "reset: " + err.Error()
}

// listenerClose: a client connects and is answered; the server closes its listening
// socket; does the client still get answers, and can a new client connect?
func listenerClose(ctx context.Context, e *runEnv, nw Network, p report.Params, obs map[string]any, m *report.Metrics) error {
	srv, err := startEchoServer(ctx, e, nw, p.Size)
	if err != nil {
		return err
	}
	defer srv.stop()
	addr := srv.addr()
	c := newRequester(e, p.Size)
	t, err := nw.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer t.Close()
	answered := func(t Transport) (bool, error) {
		before := m.RecvMsgs
		err := c.roundTrip(t, KindRequest, m, nil, -1)
		return m.RecvMsgs > before, err
	}
	ok, err := answered(t)
	if err != nil || !ok {
		return fmt.Errorf("no answer before the listener closed (err %v)", err)
	}
	if err := srv.closeListener(); err != nil {
		return err
	}
	ok, err = answered(t)
	report.Set(obs, report.ObsListenerClosedExistingAnswered, ok && err == nil)
	m.ServerSockets = srv.acceptedCount()

	newClient(ctx, e, nw, addr, answered, obs)
	m.LostMsgs = m.Timeouts
	return nil
}

// newClient dials addr, whose listener has closed, and records whether the dial is
// refused, or else whether a request is answered.
func newClient(ctx context.Context, e *runEnv, nw Network, addr string, answered func(Transport) (bool, error), obs map[string]any) {
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
