package remote

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// ExpStream is the experiment StreamTest runs.
const ExpStream = "stream"

// StreamTest is the Runner and Driver of this package's tests: bulk data over the
// data path, in the request's direction, for its duration (or Count messages per
// stream), paced to its rate. Each side counts what it sent and received; the
// receiver's figures lead. It measures what the path carried, nothing about ordering
// or loss (bench's experiments do that, through the same hook, in bench/farend).
type StreamTest struct{}

// dialStream opens a session with the server at addr whose tests StreamTest drives,
// authenticating with key (nil for none).
func dialStream(ctx context.Context, addr string, key []byte) (*Client, error) {
	return (&Dialer{Key: key, Driver: StreamTest{}}).Dial(ctx, addr)
}

// StreamCounters are one side's figures of a stream test (Results.Counters).
type StreamCounters struct {
	SentBytes   uint64  `json:"sent_bytes"`   // payload handed to the transport
	SentMsgs    uint64  `json:"sent_msgs"`    // writes (tcp) or datagrams (udp)
	DropsSender uint64  `json:"drops_sender"` // udp datagrams the kernel refused to send (ENOBUFS)
	RecvBytes   uint64  `json:"recv_bytes"`   // payload received
	RecvMsgs    uint64  `json:"recv_msgs"`    // reads (tcp) or datagrams (udp)
	SendS       float64 `json:"send_s"`       // first to last send, seconds
	RecvS       float64 `json:"recv_s"`       // first to last receive, seconds
	RecvBps     float64 `json:"recv_bps"`     // goodput: recv_bytes × 8 / recv_s, bits/s
	IgnoredMsgs uint64  `json:"ignored_msgs"` // udp datagrams dropped: another source, token or kind
}

// Check accepts the stream experiment only, without params.
func (StreamTest) Check(req TestRequest) error {
	if req.Experiment != ExpStream {
		return fmt.Errorf("experiment %q: this server runs only %q", req.Experiment, ExpStream)
	}
	if len(req.Params) > 0 && string(req.Params) != "{}" {
		return fmt.Errorf("params: %s takes none, got %s", ExpStream, truncate(string(req.Params), 64))
	}
	return nil
}

// Serve runs the server's half.
func (StreamTest) Serve(ctx context.Context, d *Data) (Results, error) {
	return streamSide(ctx, d, true)
}

// Drive runs the client's half.
func (StreamTest) Drive(ctx context.Context, d *Data) (Results, error) {
	return streamSide(ctx, d, false)
}

// Drain times: a TCP receiver waits this long past the test's end for the sender's
// FIN; a UDP receiver reads this long past it for stragglers.
const (
	tcpDrain = 5 * time.Second
	udpDrain = time.Second
	// udpPeerDoneDrain: once the client reported (it sent its last datagram before),
	// the server's UDP receiver reads this much longer at most.
	udpPeerDoneDrain = 200 * time.Millisecond
	// udpQuiet: past the test's end, a UDP receiver stops after this long without a
	// datagram.
	udpQuiet = 200 * time.Millisecond
)

type streamSideCounts struct {
	c                   StreamCounters
	firstSend, lastSend time.Time
	firstRecv, lastRecv time.Time
}

func streamSide(ctx context.Context, d *Data, server bool) (Results, error) {
	req := d.Request
	send, recv := req.Direction.ClientSends(), req.Direction.ServerSends()
	if server {
		send, recv = recv, send
	}
	payload := make([]byte, req.Size)
	rand.Read(payload) // a random payload: compressing gear gains nothing (PITFALLS.md 15)
	end := d.Started.Add(req.Duration)
	var tx, rx []streamSideCounts
	if send {
		tx = make([]streamSideCounts, req.Streams)
	}
	if recv {
		rx = make([]streamSideCounts, req.Streams)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range req.Streams {
		if send {
			g.Go(func() error { return sendStream(gctx, d, i, payload, end, &tx[i]) })
		}
		if recv {
			g.Go(func() error { return recvStream(gctx, d, i, end, server, &rx[i]) })
		}
	}
	err := g.Wait()
	var c StreamCounters
	var fs, ls, fr, lr time.Time
	for _, s := range tx {
		c.SentBytes += s.c.SentBytes
		c.SentMsgs += s.c.SentMsgs
		c.DropsSender += s.c.DropsSender
		fs, ls = earliest(fs, s.firstSend), latest(ls, s.lastSend)
	}
	for _, s := range rx {
		c.RecvBytes += s.c.RecvBytes
		c.RecvMsgs += s.c.RecvMsgs
		fr, lr = earliest(fr, s.firstRecv), latest(lr, s.lastRecv)
	}
	c.IgnoredMsgs = d.Ignored()
	if !fs.IsZero() {
		c.SendS = ls.Sub(fs).Seconds()
	}
	if !fr.IsZero() {
		c.RecvS = lr.Sub(fr).Seconds()
		if c.RecvS > 0 {
			c.RecvBps = float64(c.RecvBytes) * 8 / c.RecvS
		}
	}
	b, jerr := json.Marshal(c)
	if jerr != nil {
		return Results{}, jerr
	}
	res := Results{Complete: err == nil, Counters: b}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sendStream sends on stream i until end, or Count messages.
func sendStream(ctx context.Context, d *Data, i int, payload []byte, end time.Time, s *streamSideCounts) error {
	count := d.Request.Count
	if d.Request.Transport == "tcp" {
		c := d.Conns[i]
		c.SetWriteDeadline(end)
		for n := uint64(0); count == 0 || n < count; n++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !time.Now().Before(end) {
				break
			}
			w, err := c.Write(payload)
			s.c.SentBytes += uint64(w)
			if w > 0 {
				s.firstSend = earliest(s.firstSend, time.Now())
				s.lastSend = time.Now()
			}
			if err != nil {
				if isTimeout(err) && ctx.Err() == nil && !time.Now().Before(end) {
					break // the test ended during a blocked write
				}
				return fmt.Errorf("stream %d: send: %w", i, err)
			}
			s.c.SentMsgs++
		}
		c.SetWriteDeadline(time.Time{})
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			return cw.CloseWrite()
		}
		return nil
	}
	p := d.Paths[i]
	msgs := [][]byte{payload}
	for n := uint64(0); count == 0 || n < count; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(end) {
			break
		}
		if _, err := p.Send(msgs); err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				s.c.DropsSender++
				continue
			}
			return fmt.Errorf("stream %d: send: %w", i, err)
		}
		now := time.Now()
		s.firstSend = earliest(s.firstSend, now)
		s.lastSend = now
		s.c.SentMsgs++
		s.c.SentBytes += uint64(len(payload))
	}
	return nil
}

// recvStream receives on stream i: TCP until the sender's FIN, UDP until the drain
// after end (or shortly after the client reported, on the server).
func recvStream(ctx context.Context, d *Data, i int, end time.Time, server bool, s *streamSideCounts) error {
	record := func(n int) {
		now := time.Now()
		s.firstRecv = earliest(s.firstRecv, now)
		s.lastRecv = now
		s.c.RecvBytes += uint64(n)
		s.c.RecvMsgs++
	}
	if d.Request.Transport == "tcp" {
		c := d.Conns[i]
		c.SetReadDeadline(end.Add(tcpDrain))
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				record(n)
			}
			switch {
			case err == nil:
			case errors.Is(err, io.EOF):
				return nil
			case ctx.Err() != nil:
				return ctx.Err()
			case isTimeout(err):
				return fmt.Errorf("stream %d: no end of stream %v after the test's end", i, tcpDrain)
			default:
				return fmt.Errorf("stream %d: receive: %w", i, err)
			}
		}
	}
	p := d.Paths[i]
	hard := end.Add(udpDrain)
	var drainUntil time.Time
	peerDone := d.PeerDone()
	bufs := [][]byte{make([]byte, MaxUDPMessage)}
	sizes := []int{0}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if server && drainUntil.IsZero() {
			select {
			case <-peerDone:
				drainUntil = time.Now().Add(udpPeerDoneDrain)
			default:
			}
		}
		now := time.Now()
		if !now.Before(hard) || (!drainUntil.IsZero() && !now.Before(drainUntil)) {
			return nil
		}
		if now.After(end) && now.Sub(latest(s.lastRecv, end)) > udpQuiet {
			return nil
		}
		p.SetReadDeadline(minTime(now.Add(50*time.Millisecond), hard))
		n, err := p.Recv(bufs, sizes)
		if n > 0 {
			record(sizes[0])
		}
		if err != nil {
			if isTimeout(err) {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			return fmt.Errorf("stream %d: receive: %w", i, err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
