package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// countTest is the protocol test the serve tests drive against a running 'tcpvsudp
// serve', as the Fallback of its farend.Runner (countServeRunner), and its Driver.
// It runs experiment "stream", so that its log lines read as any plain client's:
// each side that sends writes countMsgs messages of the request's size on each data
// path (TCP: then closes its write half); each side that receives counts them (TCP:
// up to the sender's close, UDP: countMsgs datagrams); both then hold the test until
// its duration ends, or their context does. Its counters are countCounters.
type countTest struct{}

const (
	countExp  = "stream"
	countMsgs = 32 // per data path and sending side
)

// countCounters are one side's figures of a countTest: bytes sent and received, and
// what was received over the request's duration, in bits/s.
type countCounters struct {
	SentBytes uint64  `json:"sent_bytes"`
	RecvBytes uint64  `json:"recv_bytes"`
	RecvBps   float64 `json:"recv_bps"`
}

// countBytes is what each sending side of req sends, and each receiving side gets.
func countBytes(req remote.TestRequest) uint64 {
	return uint64(req.Streams) * countMsgs * uint64(req.Size)
}

// countServeRunner is serveRunner for the tests that drive countTest: farend's
// Runner, with countTest for a plain "stream".
func countServeRunner() remote.Runner { return farend.Runner{Fallback: countTest{}} }

// useCountRunner makes 'tcpvsudp serve' in this process run countServeRunner until
// the test ends.
func useCountRunner(tb testing.TB) {
	tb.Helper()
	old := serveRunner
	serveRunner = countServeRunner
	tb.Cleanup(func() { serveRunner = old })
}

// dialCount opens a session with addr whose tests countTest drives.
func dialCount(ctx context.Context, addr string, key []byte) (*remote.Client, error) {
	return (&remote.Dialer{Key: key, Driver: countTest{}}).Dial(ctx, addr)
}

func (countTest) Check(req remote.TestRequest) error {
	if req.Experiment != countExp {
		return fmt.Errorf("experiment %q: this test server runs only %q", req.Experiment, countExp)
	}
	return nil
}

func (countTest) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	return countSide(ctx, d, true)
}

func (countTest) Drive(ctx context.Context, d *remote.Data) (remote.Results, error) {
	return countSide(ctx, d, false)
}

func countSide(ctx context.Context, d *remote.Data, server bool) (remote.Results, error) {
	req := d.Request
	send, recv := req.Direction.ClientSends(), req.Direction.ServerSends()
	if server {
		send, recv = recv, send
	}
	end := d.Started.Add(req.Duration)
	for _, c := range d.Conns {
		c.SetReadDeadline(end)
	}
	for _, p := range d.Paths {
		p.SetReadDeadline(end)
	}
	stop := context.AfterFunc(ctx, func() { // unblock every read and write
		for _, c := range d.Conns {
			c.SetDeadline(time.Unix(1, 0))
		}
		for _, p := range d.Paths {
			p.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	payload := make([]byte, req.Size)
	var sent, got atomic.Uint64
	var mu sync.Mutex // guards errs
	var errs []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	var wg sync.WaitGroup
	for i := range req.Streams {
		if send {
			wg.Go(func() {
				if err := countSend(d, i, payload, &sent); err != nil {
					fail(fmt.Errorf("stream %d: send: %w", i, err))
				}
			})
		}
		if recv {
			wg.Go(func() {
				if err := countRecv(d, i, &got); err != nil {
					fail(fmt.Errorf("stream %d: receive: %w", i, err))
				}
			})
		}
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(end)):
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	c := countCounters{SentBytes: sent.Load(), RecvBytes: got.Load()}
	c.RecvBps = float64(c.RecvBytes) * 8 / req.Duration.Seconds()
	b, jerr := json.Marshal(c)
	if jerr != nil {
		return remote.Results{}, jerr
	}
	res := remote.Results{Complete: err == nil, Counters: b}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// countSend sends countMsgs messages on data path i.
func countSend(d *remote.Data, i int, payload []byte, sent *atomic.Uint64) error {
	if d.Request.Transport == "tcp" {
		c := d.Conns[i]
		for range countMsgs {
			n, err := c.Write(payload)
			sent.Add(uint64(n))
			if err != nil {
				return err
			}
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			return cw.CloseWrite()
		}
		return errors.New("the connection cannot close its write half")
	}
	for range countMsgs {
		if _, err := d.Paths[i].Send([][]byte{payload}); err != nil {
			return err
		}
		sent.Add(uint64(len(payload)))
	}
	return nil
}

// countRecv counts what arrives on data path i: TCP up to the sender's close, UDP
// countMsgs datagrams.
func countRecv(d *remote.Data, i int, got *atomic.Uint64) error {
	buf := make([]byte, 64<<10)
	if d.Request.Transport == "tcp" {
		for {
			n, err := d.Conns[i].Read(buf)
			got.Add(uint64(n))
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	bufs, sizes := [][]byte{buf}, []int{0}
	for msgs := 0; msgs < countMsgs; {
		n, err := d.Paths[i].Recv(bufs, sizes)
		if err != nil {
			return err
		}
		if n == 1 {
			got.Add(uint64(sizes[0]))
			msgs++
		}
	}
	return nil
}
