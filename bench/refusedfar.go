package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// refused against a far end. The far end finds a port of its own on which nobody
// listens for the cell's transport (in remote mode: from the server's --data-ports,
// on the address the client reaches it at) and answers every request on the cell's
// data path with it; the client then runs the loopback measurement (refusedAt)
// against the far host and that port. No message names an address: the far end only
// ever tells a port of its own host, and the host is the one the client already
// talks to.

// refusedAsks bounds the requests for the far end's closed port; each waits
// e.timeout for its answer (a datagram path may lose one).
const refusedAsks = 5

// runRefusedFar is refused with the closed port at the far end.
func runRefusedFar(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	// The far half lives while the port is asked for and the measurement runs.
	dur := refusedAsks*e.timeout + 2*refusedWait
	fo, err := openFarOne(ctx, e, report.ExpRefused, nw, p.Size, dur)
	if err != nil {
		return outcome{}, err
	}
	port, err := askClosedPort(e, fo.t)
	if err != nil {
		fo.finish(ctx)
		return outcome{}, fmt.Errorf("far end's closed port: %w", err)
	}
	addr := net.JoinHostPort(fo.remote.Addr().Unmap().String(), strconv.Itoa(int(port)))
	o := refusedAt(ctx, e, nw, p, addr)
	r := fo.finish(ctx)
	o.warns = append(o.warns, r.Warnings...)
	o.m.ServerCPUSec = r.CPUSec
	return o, nil
}

// askClosedPort asks the far end over t for its closed port: a header-only request
// of the run, answered by the same message as a reply whose seq is the port. It asks
// up to refusedAsks times, each waiting e.timeout.
func askClosedPort(e *runEnv, t Transport) (uint16, error) {
	req := make([]byte, HeaderLen)
	bufs, sizes := makeBufs(1, 64<<10), make([]int, 1)
	var last error
	for ask := range uint64(refusedAsks) {
		PutHeader(req, Header{Kind: KindRequest, Run: e.run, Len: HeaderLen, Seq: ask, SendNs: e.now(), PayloadCRC: PayloadCRC(nil)})
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
				h, derr := DecodeHeader(bufs[0][:sizes[0]])
				switch {
				case derr != nil:
					last = derr
					continue
				case h.Kind != KindReply || h.Run != e.run:
					last = fmt.Errorf("a %v message of run %x, want a reply of run %x", h.Kind, h.Run, e.run)
					continue
				case h.Seq == 0 || h.Seq > 65535:
					return 0, fmt.Errorf("the far end answered port %d, want 1..65535", h.Seq)
				}
				return uint16(h.Seq), nil
			}
			if err != nil {
				if isTimeout(err) {
					last = fmt.Errorf("no answer within %v", e.timeout)
					break
				}
				return 0, fmt.Errorf("receive the answer to request %d: %w", ask, err)
			}
		}
	}
	return 0, fmt.Errorf("%d requests: %w", refusedAsks, last)
}

// ServeRefused is the server half of refused at the far end. port is a port of this
// host on which nobody listens for t's transport; ServeRefused answers every request
// of bench's that arrives on t with the same message as a reply whose seq is port
// (so an answer is never larger than what asked for it), and ignores anything else,
// until ctx ends or t is closed. size is the largest message.
func ServeRefused(ctx context.Context, t Transport, size int, port uint16) error {
	if size < HeaderLen || port == 0 {
		return fmt.Errorf("bench: ServeRefused: want size ≥ %d bytes and a port, got %d bytes, port %d", HeaderLen, size, port)
	}
	_, err := serveMessages(ctx, t, 1, size, func(msg []byte) ([]byte, bool) {
		h, derr := DecodeHeader(msg)
		if derr != nil || h.Kind != KindRequest {
			return nil, false
		}
		h.Kind, h.Seq = KindReply, uint64(port)
		PutHeader(msg, h)
		return msg, false
	})
	return err
}
