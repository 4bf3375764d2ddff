package remote

import (
	"cmp"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// CapSockets is the capability (hello and challenge "caps") of a peer that applies a
// test's "sockets" options to its end of the data path. A server that does not list
// it would refuse the field as malformed: the client then refuses to ask (Client.Run).
const CapSockets = "sockets"

// CapVerify is the capability (hello and challenge "caps") of a peer that reads
// SocketOptions.Verify: its receivers check what the test asks. A server that does
// not list it reads no "verify" (it would refuse the field as malformed) and checks
// every payload, as tcpvsudp always did: the client then asks for nothing else
// (Client.Run refuses "header").
const CapVerify = "verify"

// Verify values (SocketOptions.Verify): what a test's receivers check of each message.
const (
	// VerifyPayload: the header's and the payload's CRC32C. The default, and what a
	// server without CapVerify does; it travels as "" (absent).
	VerifyPayload = "payload"
	// VerifyHeader: the header's CRC32C and fields only; payloads are not checked.
	VerifyHeader = "header"
)

// CapGRO is the capability of a peer that knows SocketOptions.GRO. A client asks
// for GRO only of a server that lists it; an older server keeps receiving one
// datagram per packet, and its end's report (Offload, bench.Sock) says so.
const CapGRO = "gro"

// SocketOptions shape both ends' sockets of a test's data path: tcpvsudp run's
// --rcvbuf, --sndbuf, --no-gso, --busy-poll and --batch. Each end applies them to
// the sockets it opens for the test (the server's listener before listen(2), so
// accepted connections inherit the buffer sizes before their handshake; the client's
// sockets before connect(2)); the kernel grants what its limits allow
// (net.core.rmem_max and wmem_max cap a buffer, SO_BUSY_POLL needs CAP_NET_ADMIN),
// and each end reads the grant back. The zero value keeps every default, and is what
// a request without the field asks for.
type SocketOptions struct {
	RecvBuffer int  `json:"recv_buffer,omitempty"` // SO_RCVBUF request, bytes; 0 = kernel default
	SendBuffer int  `json:"send_buffer,omitempty"` // SO_SNDBUF request, bytes; 0 = kernel default
	NoGSO      bool `json:"no_gso,omitempty"`      // udp: no segmentation offload, one datagram per kernel send
	BusyPoll   bool `json:"busy_poll,omitempty"`   // receivers spin on non-blocking reads, and ask for SO_BUSY_POLL
	// GRO asks the receiving ends of a UDP stream to take UDP GRO super-packets
	// (UDP_GRO) and split them, instead of one datagram per packet; ignored with
	// NoGSO. Both sides must have listed CapGRO: a client leaves it off otherwise.
	GRO bool `json:"gro,omitempty"`
	// Batch is the most messages one send or receive call of a UDP path moves (and
	// what the server half's experiment hands it at once); 0 = 64, at most 1024.
	Batch int `json:"batch,omitempty"`
	// Verify is what both ends' receivers check of each message (--verify): "" or
	// VerifyPayload for every check, VerifyHeader for the header only. Anything but
	// "" only to a server that listed CapVerify.
	Verify string `json:"verify,omitempty"`
}

// Bounds of SocketOptions on the wire.
const (
	// MaxSocketBuffer is the largest buffer a request may ask for, bytes: 1 GiB, far
	// above any kernel's cap, so that only the kernel's limit decides the grant.
	MaxSocketBuffer = 1 << 30
	// MaxBatch is the largest batch: the kernel's UIO_MAXIOV, the most messages one
	// sendmmsg or recvmmsg call takes.
	MaxBatch = 1024
)

// IsZero reports whether o keeps every default.
func (o SocketOptions) IsZero() bool { return o == SocketOptions{} }

// String names the options as the flags that set them: "rcvbuf 1048576 no-gso
// batch 1"; "defaults" for none.
func (o SocketOptions) String() string {
	var opts []string
	if o.RecvBuffer > 0 {
		opts = append(opts, fmt.Sprintf("rcvbuf %d", o.RecvBuffer))
	}
	if o.SendBuffer > 0 {
		opts = append(opts, fmt.Sprintf("sndbuf %d", o.SendBuffer))
	}
	if o.NoGSO {
		opts = append(opts, "no-gso")
	}
	if o.GRO && !o.NoGSO {
		opts = append(opts, "gro")
	}
	if o.BusyPoll {
		opts = append(opts, "busy-poll")
	}
	if o.Batch > 0 {
		opts = append(opts, fmt.Sprintf("batch %d", o.Batch))
	}
	if o.Verify != "" {
		opts = append(opts, "verify "+o.Verify)
	}
	if len(opts) == 0 {
		return "defaults"
	}
	return strings.Join(opts, " ")
}

func (o SocketOptions) batch() int { return cmp.Or(o.Batch, udpBatch) }

func (o SocketOptions) validate() error {
	switch {
	case o.RecvBuffer < 0 || o.RecvBuffer > MaxSocketBuffer:
		return malformed("sockets.recv_buffer: must be 0..%d bytes, got %d", MaxSocketBuffer, o.RecvBuffer)
	case o.SendBuffer < 0 || o.SendBuffer > MaxSocketBuffer:
		return malformed("sockets.send_buffer: must be 0..%d bytes, got %d", MaxSocketBuffer, o.SendBuffer)
	case o.Batch < 0 || o.Batch > MaxBatch:
		return malformed("sockets.batch: must be 0..%d messages, got %d", MaxBatch, o.Batch)
	case o.Verify != "" && o.Verify != VerifyPayload && o.Verify != VerifyHeader:
		return malformed("sockets.verify: must be %q or %q, got %q", VerifyPayload, VerifyHeader, o.Verify)
	}
	return nil
}

// setUDPBuffers asks for o's buffer sizes on a UDP data socket (no handshake to
// wait for: any time before data flows will do).
func setUDPBuffers(c *net.UDPConn, o SocketOptions) error {
	if o.RecvBuffer > 0 {
		if err := c.SetReadBuffer(o.RecvBuffer); err != nil {
			return fmt.Errorf("remote: udp receive buffer %d bytes: %w", o.RecvBuffer, err)
		}
	}
	if o.SendBuffer > 0 {
		if err := c.SetWriteBuffer(o.SendBuffer); err != nil {
			return fmt.Errorf("remote: udp send buffer %d bytes: %w", o.SendBuffer, err)
		}
	}
	return nil
}

// tcpControl returns the Control function of a net.ListenConfig or net.Dialer that
// sets o's buffer sizes before listen(2) or connect(2), or nil when o keeps the
// defaults or the system sets them after (tcpBuffersAfter).
func tcpControl(o SocketOptions) func(network, address string, rc syscall.RawConn) error {
	if o.RecvBuffer == 0 && o.SendBuffer == 0 {
		return nil
	}
	return bufferControl(o.RecvBuffer, o.SendBuffer)
}
