package tcp

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// getInfo reads TCP_INFO through the connection's raw socket.
func getInfo(c syscall.Conn) (Info, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Info{}, err
	}
	var ti *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) {
		ti, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil {
		return Info{}, cerr
	}
	if err != nil {
		return Info{}, os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	return infoFrom(ti), nil
}

// infoFrom converts the kernel's struct; its times are in microseconds.
// GetsockoptTCPInfo zeroes the struct first, so fields an older kernel does not
// fill stay 0.
func infoFrom(ti *unix.TCPInfo) Info {
	us := func(v uint64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Info{
		State:         ti.State,
		Retransmits:   ti.Retransmits,
		TotalRetrans:  ti.Total_retrans,
		Lost:          ti.Lost,
		Unacked:       ti.Unacked,
		RTT:           us(uint64(ti.Rtt)),
		RTTVar:        us(uint64(ti.Rttvar)),
		SndCwnd:       ti.Snd_cwnd,
		SndSsthresh:   ti.Snd_ssthresh,
		SndMSS:        ti.Snd_mss,
		RcvSpace:      ti.Rcv_space,
		BusyTime:      us(ti.Busy_time),
		RwndLimited:   us(ti.Rwnd_limited),
		SndbufLimited: us(ti.Sndbuf_limited),
		BytesAcked:    ti.Bytes_acked,
		BytesReceived: ti.Bytes_received,
		NotSentBytes:  ti.Notsent_bytes,
	}
}
