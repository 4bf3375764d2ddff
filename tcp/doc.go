// Package tcp moves whole messages over TCP for tcpvsudp, and reads the kernel's
// view of each connection (TCP_INFO, granted buffer sizes).
//
// TCP is a byte stream with no message boundaries, so this package frames messages
// itself. A Conn satisfies the bench package's Transport interface structurally; this
// package imports only the standard library and golang.org/x/sys, and knows nothing
// of experiments, headers or metrics.
//
// It does not retry, reconnect, multiplex, or negotiate anything: one Conn is one
// connection, and the frame below is the whole protocol. For experiments on the raw
// stream (message boundaries, for one), NetConn returns the *net.TCPConn.
//
// # Framing
//
// Each message travels as one frame: its length in bytes as a 4-byte big-endian
// unsigned integer, then the message bytes. Zero-length messages are allowed. Both
// ends refuse messages longer than Options.MaxMessage (DefaultMaxMessage, 16 MiB, by
// default) with ErrMessageTooLarge; a sender never writes any of such a message, and
// a receiver that reads such a length prefix treats the stream as broken.
//
//	+--------+--------+--------+--------+----------------------+
//	|   length (uint32, big-endian)     |  length bytes ...    |
//	+--------+--------+--------+--------+----------------------+
//
// # Batches and buffers
//
// Send and Recv take batches ([][]byte), so a call moves many messages in one syscall
// where it can. Send copies messages of up to 8 KiB, with their prefixes, into a
// 64 KiB buffer and writes it once per batch; larger messages go to writev(2)
// uncopied. Recv reads small messages through a buffer (up to 256 KiB) and returns
// every whole message that buffer already holds; a message of 32 KiB or more is read
// from the socket straight into the caller's buffer, after its length prefix, so its
// bytes are copied once, by the kernel, as iperf3's are. On Linux one readv(2) ends
// such a body and fetches the next length prefix, so a stream of large messages
// takes about one read per message. Neither allocates per message
// once the connection's buffers exist (they are allocated on first use). The caller owns every buffer passed in; a Conn
// keeps no reference to one after a call returns.
//
// # Invariants
//
//   - Nothing read is lost to a deadline: when a read deadline expires part-way
//     through a frame (even through its length prefix), the bytes stay buffered and
//     the next Recv resumes the frame exactly. Callers may poll with short deadlines.
//   - Nothing written is torn by a deadline: when a write deadline cuts a frame
//     short, Send keeps the frame's unwritten rest, counts the message as sent, and
//     writes the rest first on the next Send.
//   - One goroutine may Send while another Recvs; Close unblocks both with errors
//     wrapping net.ErrClosed.
//   - Errors name the operation and the peer ("tcp: send to 127.0.0.1:5000: ...")
//     and keep the cause reachable with errors.Is (syscall.ECONNRESET,
//     os.ErrDeadlineExceeded, net.ErrClosed). A clean close between frames is a bare
//     io.EOF; a close inside a frame wraps io.ErrUnexpectedEOF.
//
// # Options
//
// The zero Options leave Nagle's algorithm on (the net package turns it off for
// every connection; here NoDelay says so explicitly) and the buffer sizes to the
// kernel, which then autotunes them. On Linux, RecvBuffer and SendBuffer are set
// before the handshake, since the window scale is fixed then; Linux doubles each
// request and caps it at net.core.rmem_max / wmem_max, so read the grant back with
// Conn.BufferSizes rather than trusting the request.
//
// Options.BusyPoll makes Recv spin on non-blocking reads instead of parking in Go's
// poller (through syscall.RawConn.Read, so the read deadline and Close still end it),
// and asks for SO_BUSY_POLL: lower latency for a full CPU core per waiting Recv. See
// Conn.BusyPoll for what the kernel granted.
//
// Options.Blocking gets most of that latency without the spin: the socket is put in
// blocking mode and Recv sleeps in read(2) on the calling goroutine's OS thread,
// outside Go's poller, so the peer's data wakes that thread directly instead of the
// poller and then the scheduler. Close wakes a sleeping Recv at once (shutdown of the
// receive side); each sleep is bounded by SO_RCVTIMEO, so the read deadline is
// checked at least every 50 ms and honoured to the kernel's timer granularity. Send
// stays the net package's. Conn.RecvMode names the mode a Conn got.
//
// There are no kernel receive timestamps per message: a byte stream's messages have no
// arrival of their own (one segment carries many, one message spans several), so
// callers time arrivals themselves, in user space.
//
// # Platforms
//
// Linux is the reference. Elsewhere, buffer sizes are set after the handshake,
// Conn.Info and Conn.BufferSizes return errors wrapping errors.ErrUnsupported, and
// Options.BusyPoll fails Dial and Listen the same way; Options.Blocking is ignored
// (RecvMode says "poller").
package tcp
