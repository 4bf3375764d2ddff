package tcp

import "time"

// Info is a snapshot of the kernel's TCP_INFO for one connection (Linux
// include/uapi/linux/tcp.h, struct tcp_info). Fields that the running kernel's
// struct lacks (older kernels return a shorter one) are 0.
type Info struct {
	State        uint8         // TCP state, as in include/net/tcp_states.h (1 = ESTABLISHED)
	Retransmits  uint8         // current unrecovered RTO count (tcpi_retransmits)
	TotalRetrans uint32        // segments retransmitted over the connection's life
	Lost         uint32        // segments currently presumed lost
	Unacked      uint32        // segments sent and not yet acknowledged
	RTT          time.Duration // smoothed RTT (srtt)
	RTTVar       time.Duration // RTT mean deviation (rttvar)
	SndCwnd      uint32        // congestion window, segments
	SndSsthresh  uint32        // slow-start threshold, segments
	SndMSS       uint32        // sender MSS, bytes
	RcvSpace     uint32        // receiver's autotuned space estimate, bytes

	BusyTime      time.Duration // time with data in flight (tcpi_busy_time)
	RwndLimited   time.Duration // time limited by the peer's receive window (tcpi_rwnd_limited)
	SndbufLimited time.Duration // time limited by the send buffer (tcpi_sndbuf_limited)

	BytesAcked    uint64 // bytes acknowledged by the peer
	BytesReceived uint64 // bytes received from the peer
	NotSentBytes  uint32 // bytes queued in the send buffer and not yet sent
}
