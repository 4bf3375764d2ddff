package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runPingPong is closed-loop request/response: one client sends a p.Size-byte
// request, waits for the echo, records the round-trip time, and only then sends the
// next. A request unanswered within e.timeout counts as lost and the client moves on,
// so one lost datagram never stalls the run (PITFALLS 9). Closed-loop figures are
// labelled as such: they hide queueing, by construction.
func runPingPong(ctx context.Context, e *runEnv, nw Network, p Params) (Metrics, []string, error) {
	var warns []string
	srv, err := startEchoServer(ctx, e, nw, p.Size)
	if err != nil {
		return Metrics{}, nil, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	t, err := nw.Dial(ctx, srv.addr())
	if err != nil {
		return Metrics{}, nil, fmt.Errorf("dial %s: %w", srv.addr(), err)
	}
	defer t.Close()
	stopWatch := context.AfterFunc(ctx, func() { t.Close() })
	defer stopWatch()

	c := newRequester(e, p.Size)
	var warm Metrics
	if e.warmup > 0 {
		until := time.Now().Add(e.warmup)
		for time.Now().Before(until) && ctx.Err() == nil {
			if err := c.roundTrip(t, KindWarmup, &warm, nil, -1); err != nil {
				return Metrics{}, nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	u0, uerr := ReadUsage()
	retr0, _ := retransmits([]Transport{t})
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
		if err := c.roundTrip(t, KindRequest, &m, lat, -1); err != nil {
			return Metrics{}, nil, err
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Metrics{}, nil, fmt.Errorf("stopped after %d round trips: %w", m.SentMsgs, err)
	}
	u1, _ := ReadUsage()
	retr1, retrOK := retransmits([]Transport{t})
	t.Close()
	if err := srv.stop(); err != nil {
		warns = append(warns, fmt.Sprintf("server: %v", err))
	}

	finishRequests(&m, lat, p.Size, elapsed)
	if retrOK {
		m.Retransmits = u64p(retr1 - retr0)
	}
	if uerr == nil {
		d := u1.Sub(u0)
		m.CPUSec = d.CPU().Seconds()
		m.CPUSecPerGB = CPUSecPerGB(d.CPU(), m.SentBytes+m.RecvBytes)
		m.GCPauseNs = uint64(d.GCPause)
	}
	m.ServerSockets = srv.sockets
	return m, warns, nil
}

// requester sends one request at a time and waits for its answer.
type requester struct {
	e    *runEnv
	req  []byte
	resp [][]byte
	out  [][]byte
	size []int
	pcrc uint32
	seq  uint64
}

func newRequester(e *runEnv, size int) *requester {
	c := &requester{e: e, req: make([]byte, size), resp: makeBufs(1, size), out: make([][]byte, 1), size: make([]int, 1)}
	FillPayload(c.req[HeaderLen:], e.seed, 0)
	c.pcrc = PayloadCRC(c.req[HeaderLen:])
	return c
}

// roundTrip sends request c.seq and waits up to e.timeout for its reply. A timeout
// counts in m.Timeouts; a reply to an earlier request counts in m.LateMsgs and the
// wait goes on. lat, when not nil, records the time from `from` (ns since the
// epoch; negative means the send) to the reply.
func (c *requester) roundTrip(t Transport, kind Kind, m *Metrics, lat *Latency, from int64) error {
	seq := c.seq
	c.seq++
	sent := c.e.now()
	if from < 0 {
		from = sent
	}
	PutHeader(c.req, Header{Kind: kind, Run: c.e.run, Len: uint32(len(c.req)), Seq: seq, SendNs: sent, PayloadCRC: c.pcrc})
	c.out[0] = c.req
	m.SentMsgs++
	if _, err := t.Send(c.out); err != nil {
		if isDatagramRefusal(err) {
			m.DropsSender++
			m.Timeouts++
			return nil
		}
		return fmt.Errorf("send request %d: %w", seq, err)
	}
	deadline := c.e.epoch.Add(time.Duration(sent) + c.e.timeout)
	if err := t.SetReadDeadline(deadline); err != nil {
		return err
	}
	for {
		n, err := t.Recv(c.resp, c.size)
		if n > 0 {
			now := c.e.now()
			h, derr := DecodeHeader(c.resp[0][:c.size[0]])
			switch {
			case errors.Is(derr, ErrCorrupt):
				m.CorruptMsgs++
			case errors.Is(derr, ErrForeign):
				m.ForeignMsgs++
			case derr != nil:
				m.MalformedMsgs++
			case h.Run != c.e.run:
				m.ForeignMsgs++
			case h.Seq != seq:
				m.LateMsgs++ // the answer to a request already counted lost
			case VerifyPayload(c.resp[0][:c.size[0]], h) != nil:
				m.CorruptMsgs++
			default:
				m.RecvMsgs++
				if lat != nil {
					lat.Record(now - from)
				}
				return nil
			}
		}
		if err != nil {
			switch {
			case isTimeout(err):
				m.Timeouts++
				return nil
			case isOversize(err):
				m.MalformedMsgs++
			case isDatagramRefusal(err):
				// ICMP port unreachable reported on a connected socket: the request is lost.
				m.Timeouts++
				return nil
			default:
				return fmt.Errorf("receive reply %d: %w", seq, err)
			}
		}
	}
}
