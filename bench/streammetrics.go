package bench

import (
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// txSummary is what a stream cell's senders did, summed over its flows.
type txSummary struct {
	flows           int
	sent, refused   uint64
	blocked         time.Duration // time inside Send, summed over flows
	firstNs, lastNs int64         // first and last data send, on the senders' clock; firstNs −1 = none
	haveFirst       bool
	spanNs          int64 // when set (a far sender's report): lastNs − firstNs as measured there
}

func (ts *txSummary) add(tx *streamTx) {
	ts.flows++
	ts.sent += tx.sent
	ts.refused += tx.refused
	ts.blocked += tx.inSend
	if tx.sent > 0 {
		if !ts.haveFirst || tx.firstNs < ts.firstNs {
			ts.firstNs, ts.haveFirst = tx.firstNs, true
		}
		ts.lastNs = max(ts.lastNs, tx.lastNs)
	}
}

// span is the senders' interval, first data send to last, ns; 0 = none.
func (ts txSummary) span() int64 {
	if ts.spanNs > 0 {
		return ts.spanNs
	}
	if ts.haveFirst && ts.lastNs > ts.firstNs {
		return ts.lastNs - ts.firstNs
	}
	return 0
}

// streamMetrics turns what a stream cell's senders did and what its receiver
// counted into the cell's figures, warnings and observations. CPU, retransmits and
// TCP_INFO limits are the caller's, who knows which host measured them.
func streamMetrics(p report.Params, so streamOpts, ts txSummary, rr rxResult, drain time.Duration) (report.Metrics, []string, map[string]any) {
	var m report.Metrics
	var warns []string
	m.SentMsgs = ts.sent
	m.DropsSender = ts.refused
	m.SentBytes = m.SentMsgs * uint64(p.Size)
	if sp := ts.span(); sp > 0 {
		m.SendIntervalS = seconds(sp)
		m.SendRateBps = float64(m.SentBytes) * 8 / m.SendIntervalS
		m.SendMsgsPerS = float64(m.SentMsgs) / m.SendIntervalS
	}

	tot := rr.tot
	m.RecvMsgs = tot.received
	m.DupMsgs = tot.dups
	m.ReorderedMsgs = tot.reordered
	m.ReorderExtent = tot.extent
	m.CorruptMsgs = tot.Corrupt
	m.MalformedMsgs = tot.Malformed
	m.ForeignMsgs = tot.Foreign
	m.RecvBytes = tot.unique * uint64(p.Size)
	if tot.unique < m.SentMsgs {
		m.LostMsgs = m.SentMsgs - tot.unique
	}
	if tot.unique > m.SentMsgs {
		warns = append(warns, fmt.Sprintf("received %d unique messages but %d were sent: accounting error", tot.unique, m.SentMsgs))
	}
	if tot.stale > 0 {
		warns = append(warns, fmt.Sprintf("%d messages arrived too late to tell new from duplicate (more than 2^24 behind)", tot.stale))
	}
	if iv := rr.recvInterval(); iv > 0 {
		m.RecvIntervalS = seconds(iv)
		m.GoodputBps = float64(m.RecvBytes) * 8 / m.RecvIntervalS
		m.MsgsPerS = float64(tot.unique) / m.RecvIntervalS
	}
	if tot.jitterFlows > 0 {
		m.JitterNs = f64p(tot.jitterSum / float64(tot.jitterFlows))
	}
	m.JitterKernelMsgs = u64p(tot.kernelStamped)
	m.DrainS = drain.Seconds()
	if rr.dropsOK {
		// The data socket carries data only (end of stream travels beside it; warm-up
		// drops are before the base), so its drop count is data: socket + sender +
		// network = lost exactly. With UDP GRO the kernel counted packets and
		// rr.drops is the datagrams in the holes they left (grodrops.go).
		sock := rr.drops
		if rr.dropPkts != nil && sock > m.LostMsgs-min(m.LostMsgs, m.DropsSender) {
			warns = append(warns, fmt.Sprintf("socket drops: %d datagrams in holes the socket's counter crossed, more than the %d lost less %d refused: counted as %d (late arrivals filled some holes)",
				sock, m.LostMsgs, m.DropsSender, m.LostMsgs-min(m.LostMsgs, m.DropsSender)))
			sock = m.LostMsgs - min(m.LostMsgs, m.DropsSender)
		}
		m.DropsSocket = u64p(sock)
		m.DropsSocketPackets = rr.dropPkts
		var netw uint64
		if m.LostMsgs > sock+m.DropsSender {
			netw = m.LostMsgs - sock - m.DropsSender
		}
		m.DropsNetwork = u64p(netw)
	}
	m.ServerSockets = rr.sockets
	m.ServerCPUSec = rr.cpu
	flows := time.Duration(max(1, ts.flows))
	obs := map[string]any{
		// Time inside Send: for a flow-controlled sender mostly waiting for the
		// receiver; for one without, the kernel's work of sending.
		report.ObsSenderInSendNs.Key(): int64(ts.blocked / flows),
	}
	if m.SendIntervalS > 0 {
		report.Set(obs, report.ObsSenderInSendFraction, report.Round3(ts.blocked.Seconds()/float64(flows)/m.SendIntervalS))
	}
	if rr.recvBuffer > 0 { // asked for on open endpoints (a far receiver's): what the kernel granted
		report.Set(obs, report.ObsRecvBufferBytes, rr.recvBuffer)
	}
	if rr.sendBuffer > 0 {
		report.Set(obs, report.ObsSendBufferBytes, rr.sendBuffer)
	}
	return m, warns, obs
}
