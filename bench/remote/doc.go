// Package remote runs tcpvsudp tests between two hosts: a Server that is safe to
// leave listening on a network, a Client that asks it for tests, and the control
// protocol between them.
//
// A session is one TCP control connection: the handshake authenticates both sides,
// then the client asks for tests one at a time. Each test gets its own data path
// (a TCP listener, or UDP sockets) opened only after the request passed the server's
// limits, matched to the session by a random token and the control peer's address,
// and closed when the test ends. The measuring itself is done by a Runner (server
// half) and a Driver (client half), which the program supplies: a Server needs its
// Runner and a Dialer its Driver (bench/farend's run bench's experiments).
//
// # What it does not do
//
// It does not encrypt. The key authenticates both ends of the handshake; after it
// the control connection is plain TCP, so an attacker on the path can read it and
// could inject into it. On a hostile path, run it through a VPN or an SSH tunnel.
// It does not print, parse flags or handle signals: it hands its log lines to
// Server.Logf (see "Logs"), and the cmd package writes them, parses the flags and
// calls Server.Shutdown on SIGINT and SIGTERM.
//
// # Control protocol (version 1)
//
// Every message is a frame: a 4-byte big-endian unsigned length N, then N bytes of
// body. 1 ≤ N ≤ 65536 (MaxMsgLen); a receiver refuses a larger or zero length before
// reading the body, and closes the connection. The body is one JSON object (RFC 8259)
// in UTF-8, with nothing after it. Every object, at any depth, has unique keys of
// 1..64 bytes of [a-z0-9_]; nesting is at most 8 deep. The text fields below
// (software, error, reason) carry no control character, C0 (U+0000..U+001F), DEL or
// C1 (U+0080..U+009F, which holds the 8-bit CSI, U+009B), and none of the invisible
// characters that break, reorder or hide text: U+061C, U+200B..U+200F,
// U+2028..U+202E (line and paragraph separators, bidirectional embeddings and
// overrides), U+2060..U+206F (bidirectional isolates among them), U+FEFF,
// U+FFF9..U+FFFB and the tags U+E0000..U+E007F; a receiver refuses a message that
// holds one as malformed. The list is fixed, not Unicode's categories, so that
// builds of different Unicode versions agree on it. So a peer's words cannot drive
// a terminal. No receiver reads the runners' counters for text, so the client
// passes every string in them, as every other word of the server's it shows,
// through Printable, which escapes (as \u009b) whatever a terminal would act on or
// not show. Integers are written without fraction or exponent. A receiver checks a
// number against its range in the wire's own unit (milliseconds, bytes) before it
// converts it, so that no value wraps past the check. Byte strings are base64 with
// padding (RFC 4648 §4). Every body has
//
//	"v":    1, the protocol version
//	"type": the message type
//
// and the type's fields below, and no other field: a receiver refuses unknown
// fields, unknown types and other versions. (A later version adds fields only with
// a new "v", or behind a capability both sides listed in "caps".) Any error
// reading or decoding a message ends the connection; the server first sends a
// refuse saying what was wrong. The frame and the refuse message keep this shape in
// every version, so a peer can always say why it refuses.
//
// The messages, C for client, S for server; a field marked ? may be absent:
//
//	hello      C→S  software (string ≤128), caps? ([]string ≤32, each [a-z0-9.-]{1,128}; v1 defines "listen", "sent", "sockets", "verify", "gro")
//	challenge  S→C  nonce (32 bytes), auth ("hmac-sha256" or "none"), software, caps?
//	auth       C→S  nonce (32 bytes, the client's), mac? (32 bytes; absent when auth is "none")
//	auth-ok    S→C  mac? (32 bytes; absent when auth is "none"),
//	                limits {max_sessions, max_streams, max_duration_ms (0..86400000), max_rate_bps, max_size,
//	                idle_timeout_ms (0..86400000)}
//	refuse     S→C  id? (the refused test; absent: the session, and the server closes), limit? (a flag
//	                name such as "max-duration"), error (string ≤1024, the reason, for a person)
//	test       C→S  id (uint32 ≥1), experiment ([a-z0-9.-]{1,128}), transport ("tcp" or "udp"),
//	                size (bytes per message ≥1; udp ≤65490), duration_ms (1..86400000), rate_bps
//	                (bits/s over all streams, 0 = unpaced), streams (1..1024), direction ("forward":
//	                client sends, "reverse": server sends, "bidir"), count? (messages per stream, then
//	                stop; duration_ms still bounds the test), params? (object, experiment-specific),
//	                listen? (bool; only when both sides listed "listen": see Listen), sockets?
//	                ({recv_buffer?, send_buffer? (bytes, 0..2^30), no_gso?, gro?, busy_poll? (bool),
//	                batch? (1..1024), verify? ("payload" or "header"; only when both sides listed
//	                "verify")}; only to a server that listed "sockets": see Sockets)
//	accept     S→C  id, ports ([]uint16: tcp one listener, udp one socket per stream, then with listen
//	                the listener's socket), token (16 bytes)
//	start      C→S  id, paths? (udp: per socket, in port order, the 16-byte challenge it received)
//	start      S→C  id: the test runs from now
//	heartbeat  both (no fields)
//	sent       S→C  id, counters? (object, the runner's: what the server's senders sent); only when
//	                both sides listed "sent": the server's senders are done, before the results
//	results    both id, complete (bool), error? (string ≤1024), overlap? (server: most other tests
//	                running at once during this one), counters? (object, the runner's figures);
//	                C→S in place of start, with complete false: the client gives the test up
//	bye        both reason? (string ≤1024)
//
// # Session
//
//	C: hello            S: challenge | refuse     (refuse: busy; see below)
//	C: auth             S: auth-ok | refuse
//	then, per test:
//	C: test             S: accept | refuse{id}        (refuse: the session goes on)
//	   ... the client opens the data path (below) ...
//	C: start{paths}     S: start | refuse{id}
//	   or, when the client cannot open the data path:
//	C: results{complete: false, error}
//	                    S: refuse{id}
//	   ... data flows; both send heartbeat every 500 ms ...
//	                    S: sent                   (with "sent": its senders are done)
//	C: results          S: results
//	and finally either side: bye.
//
// A heartbeat may come at any time; a receiver skips it (at most 64 in a row while
// it waits for a given message, 1000 between two tests) and it extends no timeout
// but the peer-loss one. If the server stops a test early (shutdown, lost path) its
// results, marked incomplete, may come before the client's.
//
// A test whose data path is not set up is refused, and the session goes on. The
// server waits --handshake-timeout from accept for the client's start; when it does
// not come, it refuses the test with limit "handshake-timeout" and what it saw: the
// UDP paths no probe reached, or how many TCP connections arrived. A client that
// cannot open the data path within its own timeout (no challenge came back, as when a
// firewall drops UDP) gives the test up with results{complete: false, error} in
// place of start, and the server refuses the test saying what the client reported and
// what it saw. The client reads the control connection while it opens the data
// path, so a refusal stops its probes at once. When both happen at once, the
// client's start or results crosses the refusal on the wire: the server skips it (one,
// before the next test). Older peers: a server from before this rule reads the
// giving-up results as out of turn and ends the session with a refuse without id; a
// client from before it ends the session itself when its setup fails, and reads a
// refuse{id} that answers its start as a refused test.
//
// The server gives hello to auth-ok --handshake-timeout (5 s) in all, and the
// data path the same from accept to start; a session with no test for
// --idle-timeout (30 s) or older than --max-session-time (10 min) gets a bye.
// Limits.Validate keeps these sane: --handshake-timeout 100ms..1m, --idle-timeout
// 1s..24h, and --max-session-time at least --max-duration plus 10 s (a test's end,
// which a test must fit in the session with). While
// a test runs each side reads with a deadline: the server's is PeerTimeout (2.5 s),
// the client's its Timeout. Every read of a frame, header and body together, must
// finish within the reader's deadline, set once per message.
//
// # Connections before authentication
//
// A connection holds one of --pre-auth-conns (16) slots from accept until its
// handshake ends (auth-ok, a refusal, or --handshake-timeout). One source holds at
// most a quarter of the slots, at least 1 (Limits.PreAuthShare: 4 of 16); a source
// is an IPv4 address, or an IPv6 /64, since a host commonly has a /64 and may use
// any address in it. So a host without the key that keeps connections in their
// handshake (a slowloris) holds its share, and the other sources' clients still get
// in; it takes four sources to hold every slot. A connection over its source's share
// or over the cap is refused at accept, before its hello is read: the server sends
//
//	refuse  limit "pre-auth-conns", error "refused: server busy: 4 connections from 192.0.2.7
//	        already in their handshake, as many as one source may have (a quarter of
//	        --pre-auth-conns 16); try again in a few seconds"
//
// (over the cap: "refused: server busy: 16 connections already in their handshake
// (--pre-auth-conns 16); try again in a few seconds"), closes its side, reads and
// drops what the peer sends until the peer closes, and closes: 500 ms at most,
// writing included, so a peer that neither reads nor closes cannot hold it longer.
// At most 64 connections are turned away like this at once; beyond that one is closed
// unanswered. The client reads the refuse instead of the challenge and returns it
// as a *RefusedError (Limit "pre-auth-conns"), even when its hello could not be
// written; a connection closed without a word it reports as closed before the
// challenge, perhaps by a busy server. Stats.PreAuthRejected counts both refusals,
// Stats.PreAuthOverShare those over a source's share.
//
// # Authentication
//
// With a pre-shared key K (LoadKey: the file's bytes, surrounding whitespace
// trimmed, at least 16 bytes, a file no one but its owner may access), with sn the
// server's nonce and cn the client's:
//
//	auth.mac    = HMAC-SHA256(K, "tcpvsudp-remote v1 client" || 0x00 || sn || cn)
//	auth-ok.mac = HMAC-SHA256(K, "tcpvsudp-remote v1 server" || 0x00 || sn || cn)
//
// Each side compares in constant time. The labels differ, so one side's proof never
// passes as the other's. sn is 32 fresh random bytes per connection, and a
// connection gets one attempt, so a recorded auth is worthless on any other
// connection; the server also refuses a cn it accepted in the last 10 minutes (up to
// 4096 remembered). A client with a key refuses a server that answers "none"; a
// server without a key answers "none" and accepts only loopback peers, unless
// started with --allow-unauthenticated.
//
// # Data path
//
// The server opens a test's sockets on ephemeral ports, or, with --data-ports LO-HI,
// on free ports of that range (tried in order from a random start, at most 1024 per
// socket; a test that finds none free is refused with limit "data-ports"), so that
// a firewall need open only the control port and the range. A Runner that needs a
// port of the server where nobody listens (bench's refused) gets one the same way,
// bound and released at once (Data.ClosedPort); it is the server's own port, on the
// address the client reaches it at, so telling it names no third party.
//
// TCP: the client opens the test's streams to the accept's port, on the address of
// the control connection (no message names an address, so no message can point the
// server at a third party). Each connection's first 16 bytes are the token. The server
// closes connections from another IP address unread, and those whose first bytes are
// not the token; the listener closes once every stream arrived. A test's setup takes
// at most 4*streams+16 connections from the client's IP address; connections from
// any other address do not count against that (a third party cannot spend the
// client's attempts): each is reset at accept, unread, and counted
// (Stats.DataForeign, and one log line per test), for as long as the setup lasts
// (--handshake-timeout) and no longer.
//
// UDP: every datagram is the token (16 bytes), a kind byte, and the kind's body:
//
//	1 probe      C→S  padding; the client pads probes to 64 bytes and resends one every 100 ms
//	2 challenge  S→C  16 random bytes (the datagram is 33 bytes)
//	3 data       both one message
//
// RFC 9000 §8 is the model. The server answers a probe only from the control
// peer's IP address, with the token, and only while the address's budget allows:
// to an address not yet validated it never sends more bytes than it received from
// it (a factor of 1, where QUIC allows 3), and at most 8 challenges per address and socket.
// The client proves it receives at its address by returning the challenge in
// start; that address is then the only one the socket talks to (on Linux the socket
// is connected to it, so the kernel drops other sources and reports ICMP
// unreachable). Everything else is dropped and counted.
//
// The server paces what it sends, over all streams of a test, at the request's
// rate_bps capped by --max-rate (rate_bps 0 means --max-rate); it counts UDP
// payload bytes, prefix included, and TCP payload bytes. It stops sending when the
// peer is lost: no control message for PeerTimeout (2.5 s), an ICMP unreachable on a
// data socket, or the control connection closed; a sender notices within one
// pacing step (at most 100 ms).
//
// # Listen
//
// With the "listen" capability in both hello and challenge, a test may ask for
// "listen": true: a data path that keeps taking new clients after start, for
// experiments that open a connection per transaction or many clients at once. A
// server refuses listen in a session whose hello did not list the capability.
//
// TCP: the test's listener stays open until the test ends. Every further connection
// must come from the control connection's IP address and open with the token within
// 2 s, or it is closed unread and counted; at most 1024 are open at once (the rest
// wait in the kernel's backlog). Everything the server sends on them is paced with
// the test.
//
// UDP: one more socket, whose port comes last in accept. It takes data datagrams
// (token, kind 3) from any port of the control connection's IP address, so each
// client may use a socket of its own, without a probe. No address is ever validated
// on it: the server answers an address only within the bytes it received from that
// address (the amplification rule with a factor of 1, for every reply), remembering
// at most 4096 addresses (forgetting one forgets its credit and its debit together),
// and paces what it sends with the test.
//
// # Sockets
//
// A test's "sockets" (SocketOptions) shape both ends' data sockets, so that the
// client's socket flags hold across hosts as on one: each end asks its kernel for
// the buffer sizes (TCP before listen(2) or connect(2), so the handshake's window
// scale fits them and accepted connections inherit them), turns UDP GSO off, spins
// its receives, and moves at most batch datagrams per system call. The kernel
// grants what its limits allow (net.core.rmem_max, wmem_max; SO_BUSY_POLL needs
// CAP_NET_ADMIN); each end reads the grant back and reports it with its results. A
// server that did not list "sockets" in its challenge reads the field as unknown:
// the client never sends it there, and refuses the test instead.
//
// "gro" asks the receiving ends of a UDP stream to take UDP GRO super-packets
// (several datagrams of one sender in one packet, split back at the receiver);
// bench's far stream sets it unless --no-gso. Only to a server that listed "gro":
// to an older one the client sends the test without it, and both ends keep one
// datagram per packet; each end's report (env.sockets, env.peer.sockets: gro) says
// what it used.
//
// # Logs
//
// Server.Logf gets one line per event, each naming the control connection's peer
// (log.go shows them): a connection refused at accept (busy), refused (with the reason)
// or failed in its handshake; a session started (authenticated by key or not) and
// ended (with why: bye, idle timeout, session time, shutdown, a lost peer or a
// protocol error, and how many tests it ran); a test started (experiment,
// transport, direction, streams, size, duration, rate, data ports), ended
// (complete, or incomplete and why, and the bytes moved when the Runner's counters
// have sent_bytes or recv_bytes) and refused (the limit's flag, and the reason).
// Peers choose how many lines they cause, so the lines are rate-limited: 32 at
// once, then one a second, for all connections and sessions together, and apart
// for each session's tests; the next line says how many were left out, and
// Stats.LogSuppressed counts them.
//
// # Shutdown
//
// Shutdown stops accepting and cancels every test's context; once every session
// ended it returns nil. When its context ends first it closes every connection,
// waits up to 200 ms for Runners to return, and returns: a Runner that ignores its
// context is then abandoned (its goroutine left to end on its own) and named in the
// error, a *StuckError. Close does the same at once.
//
// # Invariants
//
// Decoders never panic and never read past MaxMsgLen (fuzzed: FuzzDecode,
// FuzzReadFrame, FuzzParseDatagram, FuzzParseKey; the replay cache and the
// amplification budget by FuzzNonceCache and FuzzAmpBudget). Printable's output
// holds nothing a terminal acts on (FuzzPrintable). Every goroutine a Server or Client
// starts ends before the call that started it returns, or on Shutdown/Close, but
// for a Runner that ignores its context, which Shutdown and Close name. A
// request above a limit is refused before any data socket opens, with an error that
// names the limit's flag.
package remote
