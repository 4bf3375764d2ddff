package bench

import (
	"fmt"
	"runtime"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// What each end of a data path got of the run's socket flags (--rcvbuf, --sndbuf,
// --no-gso, --busy-poll, --batch). On one host both ends are this process and
// env.sockets describes one probe socket per transport; across hosts (remote mode)
// each end describes its own data-path endpoints, read back from the kernel as they
// opened, and counts its sends on them: env.sockets for this host, env.peer.sockets
// for the server.

// SendCaller is a transport that counts its send system calls and the datagrams they
// carried (udp.Conn, a remote UDP path): datagrams/calls is what batching bought.
type SendCaller interface {
	SendCalls() (calls, datagrams uint64)
}

// sendCalls sums the send system calls of ts and the datagrams they carried, over
// those that count them (SendCaller: UDP); ok when any does.
func sendCalls(ts []transport.Transport) (calls, datagrams uint64, ok bool) {
	for _, t := range ts {
		if sc, is := t.(SendCaller); is {
			c, d := sc.SendCalls()
			calls, datagrams, ok = calls+c, datagrams+d, true
		}
	}
	return calls, datagrams, ok
}

// batchSizer is a transport that says the most messages one of its calls moves.
type batchSizer interface{ Batch() int }

// SocketsOf describes ts, one end's data-path endpoints of one cell, as their
// kernel granted them now (call it as they open, before an experiment resizes
// them): the smallest buffer grants over them, and the offloads, timestamps and
// busy polling of the first that reports them. batch is the most messages one of
// the end's calls moves (the transport's own limit when it has one); the send
// counts start at zero (AddSends).
func SocketsOf(ts []transport.Transport, batch int) report.Sock {
	s := report.Sock{Batch: batch, DataSockets: len(ts)}
	first := true
	for _, t := range ts {
		if b, ok := t.(batchSizer); ok {
			s.Batch = min(s.Batch, b.Batch())
		}
		bs, ok := t.(transport.BufferSizer)
		if !ok {
			continue
		}
		r, w, err := bs.BufferSizes()
		if err != nil {
			continue
		}
		s.RecvBuffer, s.SendBuffer = report.SmallerKnown(s.RecvBuffer, r), report.SmallerKnown(s.SendBuffer, w)
		if !first {
			continue
		}
		first = false
		if o, ok := t.(offloader); ok {
			s.GSO, s.GRO = o.Offload()
		}
		if ts, ok := t.(transport.Timestamper); ok {
			s.RxTimestamps = ts.Timestamps()
		}
		if bp, ok := t.(transport.BusyPoller); ok {
			s.BusyPoll, s.BusyPollUs = bp.BusyPoll()
		}
	}
	return s
}

// RecvModes is the receive mode of ts, one end's endpoints of a cell: the first
// that says (RecvModer), or "" when none does.
func RecvModes(ts []transport.Transport) string {
	for _, t := range ts {
		if m := transport.RecvModeOf(t); m != "" {
			return m
		}
	}
	return ""
}

// AddSends adds the send calls and datagrams of ts (SendCaller) to s; endpoints
// that do not count them (TCP) add nothing.
func AddSends(s *report.Sock, ts []transport.Transport) {
	if calls, dgrams, ok := sendCalls(ts); ok {
		s.SendCalls = report.AddCount(s.SendCalls, calls)
		s.SentDatagrams = report.AddCount(s.SentDatagrams, dgrams)
	}
}

// Refusals says what an end's kernel refused of the socket flags want asked for, as
// its endpoints read back got: a buffer granted less than asked (Linux doubles a
// request to make room for its bookkeeping, so less than twice it there), busy
// polling without SO_BUSY_POLL. Each line names the flag.
func Refusals(want transport.NetOptions, transport string, got report.Sock) []string {
	factor := 1
	if runtime.GOOS == "linux" {
		factor = 2
	}
	var out []string
	if want.RecvBuffer > 0 && got.RecvBuffer > 0 && got.RecvBuffer < factor*want.RecvBuffer {
		out = append(out, fmt.Sprintf("--rcvbuf: %s receive buffer: asked for %d bytes, granted %d (net.core.rmem_max caps it)", transport, want.RecvBuffer, got.RecvBuffer))
	}
	if want.SendBuffer > 0 && got.SendBuffer > 0 && got.SendBuffer < factor*want.SendBuffer {
		out = append(out, fmt.Sprintf("--sndbuf: %s send buffer: asked for %d bytes, granted %d (net.core.wmem_max caps it)", transport, want.SendBuffer, got.SendBuffer))
	}
	if want.BusyPoll && got.BusyPoll && got.BusyPollUs == 0 {
		out = append(out, fmt.Sprintf("--busy-poll: %s: SO_BUSY_POLL refused (raising it above net.core.busy_read needs CAP_NET_ADMIN); receivers still spin on non-blocking reads", transport))
	}
	return out
}
