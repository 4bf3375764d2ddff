// Package udp is tcpvsudp's UDP transport: it moves whole datagrams in batches and
// reads the kernel's counters, so that UDP loss is counted where it happens.
//
// It knows nothing of experiments, headers or sequence numbers: messages are opaque
// bytes, one datagram each, and every buffer belongs to the caller. It imports only
// the standard library and golang.org/x/sys.
//
// # What it does
//
// Dial opens a client socket connected to one peer; Listen opens a server socket that
// serves every peer. A Conn's Send and Recv move several datagrams per call:
//
//   - Send hands each message to the kernel as one datagram, in order, and returns how
//     many the kernel accepted. A message longer than MaxPayloadIPv4 (MaxPayloadIPv6 on
//     an IPv6 socket) fails the call before anything is sent (ErrMessageTooLarge).
//   - Recv blocks until one datagram has arrived, then returns every datagram already
//     queued, up to the batch size, without blocking again. Boundaries are kept: a
//     datagram larger than its buffer is an error (ErrTruncated), never a short message.
//   - Read and write deadlines bound the calls; Close unblocks them. One goroutine may
//     Send while another Recvs. In steady state neither allocates.
//   - RecvStamps returns when the kernel received each datagram of the last Recv.
//
// # Server sockets and Send
//
// A server socket (from Listen) is not connected: Send answers the sources of the
// messages returned by the most recent Recv. Message i goes to the source of message i
// of that Recv; a message beyond that Recv's count is not sent, and Send returns an
// error wrapping ErrNoPeer. So a generic echo loop works for UDP as it does for TCP:
//
//	n, err := c.Recv(bufs, sizes)
//	// ... trim bufs[i] to sizes[i] ...
//	_, err = c.Send(bufs[:n])
//
// Only one goroutine, the echo loop's, may use a server socket this way: another
// goroutine's Recv in between would change whom Send answers.
//
// With IP_RECVERR on, an ICMP report about a reply to one peer (a client that went
// away: port unreachable) would fail the server's next Recv or Send. A server socket
// serves many peers, so it counts such a report in SendErrors and carries on; a
// connected socket returns it (errors.Is(err, syscall.ECONNREFUSED)).
//
// # Segmentation offload
//
// On Linux a connected socket sends with UDP GSO when the kernel has it (probed at
// open: UDP_SEGMENT set, then read back): Send hands each run of consecutive messages
// of one length L (at most 1472 bytes, 1452 over IPv6; at most 128 messages, the
// kernel's UDP_MAX_SEGMENTS since Linux 6.9, and one datagram's worth of bytes;
// optionally ended by one shorter message) to the kernel as one super-datagram with a
// UDP_SEGMENT control message, in one sendmmsg entry whose iovecs point at the
// messages themselves, one iovec per stretch of messages adjacent in memory. One
// sendmmsg carries up to Options.Batch such entries. The kernel cuts each back into
// one datagram per message; Send still counts messages, and a partial sendmmsg maps
// back to whole runs. A kernel before 6.9 refuses more than 64 segments (EINVAL):
// the first refusal lowers the limit to 64 for the Conn and for Conns opened after
// it, and the call is retried. If the kernel refuses a super-datagram otherwise (EIO,
// EINVAL, EMSGSIZE), the socket sends one datagram per message from then on. Server
// sockets (from Listen) never use GSO: their replies go to the sources of many peers.
//
// UDP GRO is off unless Options.GRO asks for it. With it, the kernel may queue a
// super-packet, the datagrams of one GSO send (or consecutive datagrams of one
// sender that the host's GRO coalesced) still together; Recv receives into its own
// 64 KiB buffers per batch entry (allocated by the first Recv), splits each
// super-packet at the segment size of its UDP_GRO control message (the last segment
// may be shorter), and copies each datagram into its own buffer; what does not fit
// the call's buffers comes first in the next Recv, without a system call. RecvViews
// skips that copy: it returns views into those buffers, valid until the next
// receive, and says which datagrams came in one packet, with the drop counter the
// packet carried (SO_RXQ_OVFL). That is what a caller needs to count drops in
// datagrams: a full receive buffer drops a whole super-packet, and Linux counts it
// once however many datagrams it held (measured on 6.18: SO_MEMINFO, SO_RXQ_OVFL,
// Udp: RcvbufErrors and InErrors each add 1; InDatagrams adds 1 per packet read).
// Without GRO the kernel splits super-datagrams before queueing them and counts
// every dropped datagram. GRO is off by default for that, and for the 64 KiB per
// batch entry it costs.
//
// Options.NoGSO turns both off. Offload reports what a socket uses.
//
// # Counters
//
// Each counter counts datagrams at one place, so a report can say where loss happened:
//
//   - RecvDrops: datagrams the kernel dropped at this socket because its receive
//     buffer was full (getsockopt SO_MEMINFO, SK_MEMINFO_DROPS: the socket's share of
//     the kernel's Udp: RcvbufErrors). Exact and final, including drops after the last
//     datagram read: the figure to report as the receiver's socket drops.
//   - RxqOverflow: the same kernel counter as carried by the most recent datagram
//     that carried one (SO_RXQ_OVFL control message). It reflects drops up to when that
//     datagram was queued: drops after it never show, and a receiver that stops reading
//     while its buffer overflows sees 0. Always ≤ RecvDrops; a progress indicator, not
//     a final figure.
//   - SendErrors: datagrams the kernel refused on the sending side: each one Send could
//     not hand over (ENOBUFS from a full device queue, ECONNREFUSED, EAGAIN until the
//     write deadline, ...) plus each refusal reported later through the socket's error
//     queue (IP_RECVERR; for example ICMP port unreachable). A datagram Send accepted
//     may still be lost in the network: SendErrors is not the whole loss.
//
// All three start at zero when the socket opens. SO_MEMINFO and SO_RXQ_OVFL are
// 32-bit kernel counters and wrap after 2³² drops.
//
// # Receive timestamps
//
// On Linux a socket asks the kernel, at open, to stamp each datagram as it arrives
// (SO_TIMESTAMPNS_NEW, else SO_TIMESTAMPNS; set, then read back: Timestamps says
// whether it took). Every datagram's stamp comes in a control message of its own
// recvmmsg entry, in room allocated at open, so Recv still allocates nothing; after
// each Recv, RecvStamps copies the stamps of the datagrams it returned into the
// caller's slice. A stamp is ns since the Unix epoch on CLOCK_REALTIME, taken when the
// datagram entered the host's receive path (on loopback: when the sender's packet
// went through lo), so it leaves out the wait in the socket queue and for the reader
// to be scheduled: the arrival time RFC 3550's jitter asks for. Compare it with other
// CLOCK_REALTIME readings (time.Now().UnixNano()), or convert it to a monotonic clock
// by its age at read time; never with a monotonic reading directly.
//
// Stamps are cheap (the kernel reads its clock once per packet) but global: the first
// socket to ask turns on stamping for every packet the host receives, after a short
// delay in which the kernel stamps datagrams when they are read instead. The datagrams
// of one GRO super-packet share its stamp. Options.NoTimestamps keeps them off; then,
// and on systems other than Linux, RecvStamps returns 0, never a made-up time.
//
// # Busy polling
//
// Options.BusyPoll trades CPU for latency: Recv no longer parks the goroutine in Go's
// poller until the kernel signals the socket readable (a wake-up and a scheduling
// delay per wait), but spins, retrying a non-blocking recvmmsg. Each try goes through
// syscall.RawConn.Read, which checks the read deadline and Close first, so both
// still end a spinning Recv; between tries it yields the processor
// (runtime.Gosched), so other goroutines still run. A waiting Recv costs a full CPU
// core. The socket also asks for SO_BUSY_POLL (50 µs), which makes the kernel poll the
// device's NAPI queue itself; the kernel grants it only with CAP_NET_ADMIN (beyond
// net.core.busy_read), and loopback has no NAPI queue, so there it changes nothing:
// the spin in user space is what helps. BusyPoll reports both.
//
// # Blocking receives
//
// Options.Blocking gets most of busy polling's latency without the spin: the socket is
// put in blocking mode and Recv calls a blocking recvmmsg (MSG_WAITFORONE: it sleeps
// for the first datagram only, then takes what is queued, as the poller's path does)
// on the calling goroutine's OS thread, outside Go's poller, so the datagram wakes
// that thread directly instead of the poller and then the scheduler. Close wakes a
// sleeping Recv at once (shutdown(SHUT_RD)); each sleep is bounded by SO_RCVTIMEO, so
// the read deadline is checked at least every 50 ms and honoured to the kernel's
// timer granularity. Send passes MSG_DONTWAIT and waits for room in the poller, as
// without it. Counters, timestamps and GRO work the same. RecvMode names the mode.
//
// # Buffers
//
// Options.RecvBuffer and Options.SendBuffer set SO_RCVBUF and SO_SNDBUF at open.
// Linux doubles each request (for its bookkeeping) and caps it at net.core.rmem_max /
// wmem_max without saying so: BufferSizes reads back what was granted, and that is the
// figure to report.
//
// # Multicast
//
// One datagram to many receivers, on this host only. ListenMulticast opens a receiver
// bound to a group's address and port and joined to the group on the loopback
// interface; DialMulticast opens a sender connected to the group that sends through
// loopback with TTL 0. Each datagram the sender sends once reaches every receiver
// joined to the group: the kernel copies it, the sender does not. A socket that did
// not join receives nothing, even when bound to the group (IP_MULTICAST_ALL is off).
// LocalGroup picks a group in 239.255.0.0/16 (RFC 2365 local scope); port 0 lets the
// first receiver's kernel pick a free port.
//
// Linux delivers multicast on lo although lo has no MULTICAST flag: nothing needs
// changing on the host. ProbeMulticast checks it end to end; where it fails (lo down,
// a kernel without IP multicast, a firewall), errors wrap errors.ErrUnsupported and
// say what to change. IPv4 only.
//
// # What varies by OS
//
// On Linux, Send and Recv use sendmmsg and recvmmsg, Options.Batch entries (datagrams,
// or with the offloads super-datagrams and coalesced packets) per system call, through syscall.RawConn so Go's poller waits and deadlines work; all counters
// work. Elsewhere Recv returns one datagram per call and Send makes one system call per
// datagram (net.UDPConn.ReadFromUDPAddrPort / WriteToUDPAddrPort); RecvDrops returns an
// error wrapping errors.ErrUnsupported, RxqOverflow stays 0, SendErrors counts only
// the errors Send itself returned, RecvStamps returns 0 (no kernel timestamps), and
// multicast and Options.BusyPoll are unsupported (errors wrap errors.ErrUnsupported).
package udp
