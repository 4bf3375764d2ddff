package remote

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// udpTest asks a raw session for a UDP test and returns the accept.
func udpTest(t *testing.T, r *raw, id uint32, dir Direction, d time.Duration, rate uint64) *Accept {
	t.Helper()
	req := TestRequest{ID: id, Experiment: ExpStream, Transport: "udp", Size: 500, Duration: d, RateBps: rate, Streams: 1, Direction: dir}
	r.send(req.wire())
	acc := recvAs[*Accept](r)
	if acc.ID != id || len(acc.Ports) != 1 {
		t.Fatalf("accept %+v", acc)
	}
	return acc
}

// startUDP validates a legitimate client's socket for test 1's one UDP path and
// starts the test; it returns that socket.
func startUDP(t *testing.T, r *raw, acc *Accept) *net.UDPConn {
	t.Helper()
	legit := udpTo(t, acc.Ports[0])
	proof, err := probe(t.Context(), legit, acc.Token)
	if err != nil {
		t.Fatal(err)
	}
	r.send(&Start{ID: 1, Paths: [][]byte{proof}})
	recvAs[*Start](r)
	return legit
}

// attacker counts the bytes a socket sends to the server and gets back.
type attacker struct {
	c          *net.UDPConn
	sent, recv int
}

func newAttacker(t *testing.T, ip string) *attacker {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Skipf("cannot bind %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return &attacker{c: c}
}

func (a *attacker) send(t *testing.T, to netip.AddrPort, b []byte) {
	t.Helper()
	n, err := a.c.WriteToUDPAddrPort(b, to)
	if err != nil {
		t.Fatal(err)
	}
	a.sent += n
}

// drain counts what arrives for d: a window for what must not come, which no event
// marks.
func (a *attacker) drain(d time.Duration) {
	buf := make([]byte, 65536)
	a.c.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := a.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isTimeout(err) {
				return
			}
			continue // ICMP errors: nothing received
		}
		a.recv += n
	}
}

// TestUDPAmplification: a source that has not been validated gets at most as many
// bytes back as it sent, whatever it sends; a source off the control peer's IP and
// a source without the token get nothing; after validation, nothing but the
// validated address gets data.
//
// Before validation the server counts every byte it takes in and sends out, so the
// test waits for those counts (not for time to pass): once the server has taken in
// everything the attackers sent and they have received everything it sent, nothing
// more is coming.
func TestUDPAmplification(t *testing.T) {
	s := &Server{Key: testKey}
	r := dialRaw(t, startServer(t, s))
	r.handshake(testKey)
	acc := udpTest(t, r, 1, Reverse, time.Second, 4e6)
	srv := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), acc.Ports[0])

	same := newAttacker(t, "127.0.0.1")  // the control peer's IP, another port: knows the token
	other := newAttacker(t, "127.0.0.2") // another IP: knows the token
	blind := newAttacker(t, "127.0.0.1") // does not know the token
	wrong := bytes.Repeat([]byte{0x5a}, tokenLen)
	for i := range 5 {
		blind.send(t, srv, appendDatagram(nil, wrong, kindProbe, make([]byte, 100)))
		other.send(t, srv, appendDatagram(nil, acc.Token, kindProbe, make([]byte, 100)))
		same.send(t, srv, appendDatagram(nil, acc.Token, kindProbe, make([]byte, 3))) // 20 bytes < a challenge
		same.send(t, srv, appendDatagram(nil, acc.Token, kindData, make([]byte, i*40)))
	}
	for range 40 { // more probes than the challenge cap
		same.send(t, srv, appendDatagram(nil, acc.Token, kindProbe, make([]byte, probeLen-udpPrefixLen)))
	}
	sentAll := uint64(same.sent + other.sent + blind.sent)
	waitfor.True(t, 10*time.Second, "the server took in every attacker's datagram", func() bool {
		return s.Stats().UDPRecvUnvalidated == sentAll
	})
	waitfor.True(t, 10*time.Second, "the attackers received everything the server sent them", func() bool {
		for _, a := range []*attacker{same, other, blind} {
			a.drain(time.Millisecond) // what has arrived; the kernel delivers loopback datagrams at once
		}
		return uint64(same.recv+other.recv+blind.recv) == s.Stats().UDPSentUnvalidated
	})
	t.Logf("before validation: same-IP sent %d got %d; other IP sent %d got %d; blind sent %d got %d",
		same.sent, same.recv, other.sent, other.recv, blind.sent, blind.recv)
	if same.recv > same.sent || same.recv == 0 {
		t.Errorf("same-IP source: sent %d bytes, got %d back; want 1..%d", same.sent, same.recv, same.sent)
	}
	if same.recv > maxChallenges*challengeDgm {
		t.Errorf("same-IP source got %d bytes, more than %d challenges", same.recv, maxChallenges)
	}
	if other.recv != 0 || blind.recv != 0 {
		t.Errorf("other IP got %d bytes, blind source %d; want 0", other.recv, blind.recv)
	}

	// The legitimate client validates its own address and the test runs.
	legit := startUDP(t, r, acc)
	r.startHeartbeats()
	// Attackers keep at it during the test; the server sends data to legit only. The
	// data socket is connected to legit now, so the kernel drops the attackers'
	// datagrams before the server sees them: no count to wait for, only a window in
	// which a wrong reply would show.
	for range 20 {
		same.send(t, srv, appendDatagram(nil, acc.Token, kindProbe, make([]byte, probeLen-udpPrefixLen)))
		other.send(t, srv, appendDatagram(nil, acc.Token, kindData, make([]byte, 100)))
	}
	before := same.recv
	same.drain(300 * time.Millisecond)
	other.drain(10 * time.Millisecond)
	awaitData(t, legit, acc.Token)
	if same.recv != before || other.recv != 0 {
		t.Errorf("during the test: same-IP source got %d more bytes, other IP %d; want 0", same.recv-before, other.recv)
	}
	r.stopHeartbeats()
	r.send(&ResultsMsg{ID: 1, Complete: true})
	recvAs[*ResultsMsg](r)
	st := s.Stats()
	if st.UDPSentUnvalidated > st.UDPRecvUnvalidated || st.UDPSentUnvalidated < uint64(same.recv+challengeDgm) {
		t.Errorf("stats %+v: sent unvalidated %d bytes; want the attacker's %d plus the client's challenge, and no more than received", st, st.UDPSentUnvalidated, same.recv)
	}
}

// dataRecorder is StreamTest, keeping the Data of the test it serves.
type dataRecorder struct {
	StreamTest
	d atomic.Pointer[Data]
}

func (r *dataRecorder) Serve(ctx context.Context, d *Data) (Results, error) {
	r.d.Store(d)
	return r.StreamTest.Serve(ctx, d)
}

// ignored is how many datagrams the served test's paths have dropped so far.
func (r *dataRecorder) ignored() uint64 {
	if d := r.d.Load(); d != nil {
		return d.Ignored()
	}
	return 0
}

// TestUDPWrongToken: on a validated path, datagrams with another token or of
// another kind are dropped and counted, never measured.
func TestUDPWrongToken(t *testing.T) {
	rec := &dataRecorder{}
	s := &Server{Key: testKey, Runner: rec}
	r := dialRaw(t, startServer(t, s))
	r.handshake(testKey)
	acc := udpTest(t, r, 1, Forward, 2*time.Second, 0)
	legit := startUDP(t, r, acc)
	r.startHeartbeats()
	const good, badToken, badKind = 20, 7, 3
	wrong := append([]byte(nil), acc.Token...)
	wrong[0] ^= 1
	send := func(b []byte) { // 31 datagrams of at most 150 bytes: far below any receive buffer
		if _, err := legit.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range good {
		send(appendDatagram(nil, acc.Token, kindData, bytes.Repeat([]byte{byte(i)}, 100)))
		if i < badToken {
			send(appendDatagram(nil, wrong, kindData, make([]byte, 100)))
		}
		if i < badKind {
			send(appendDatagram(nil, acc.Token, kindChallenge, make([]byte, challengeLen)))
		}
	}
	send(acc.Token[:5]) // short: dropped too
	// The short datagram went last and the path reads in order: once it is counted
	// ignored, the server has read every datagram (the good ones' count follows when
	// their Recv returns, before the Runner can see these results).
	waitfor.True(t, 10*time.Second, "the server read every datagram", func() bool {
		return rec.ignored() == badToken+badKind+1
	})
	r.stopHeartbeats()
	r.send(&ResultsMsg{ID: 1, Complete: true})
	res := recvAs[*ResultsMsg](r)
	sc := counters(t, Results{Counters: res.Counters})
	if sc.RecvMsgs != good || sc.RecvBytes != good*100 {
		t.Errorf("server received %d messages, %d bytes; want %d, %d", sc.RecvMsgs, sc.RecvBytes, good, good*100)
	}
	if sc.IgnoredMsgs != badToken+badKind+1 {
		t.Errorf("server ignored %d datagrams, want %d", sc.IgnoredMsgs, badToken+badKind+1)
	}
}

// TestUDPStartWrongProof: a start whose proof matches no challenge is refused, with
// no data sent, and the session goes on.
func TestUDPStartWrongProof(t *testing.T) {
	s := &Server{Key: testKey}
	r := dialRaw(t, startServer(t, s))
	r.handshake(testKey)
	udpTest(t, r, 1, Reverse, time.Second, 1e6)
	r.send(&Start{ID: 1, Paths: [][]byte{make([]byte, challengeLen)}})
	ref := recvAs[*Refuse](r)
	if ref.ID != 1 || !strings.Contains(ref.Error, "not validated") {
		t.Errorf("refusal %+v, want test 1 not validated", ref)
	}
	if st := s.Stats(); st.DataBytesSent != 0 || st.TestsRun != 0 {
		t.Errorf("stats %+v: want no data sent", st)
	}
	acc := udpTest(t, r, 2, Reverse, 200*time.Millisecond, 1e6) // the session goes on
	proof, err := probe(t.Context(), udpTo(t, acc.Ports[0]), acc.Token)
	if err != nil {
		t.Fatal(err)
	}
	r.send(&Start{ID: 2, Paths: [][]byte{proof}})
	recvAs[*Start](r)
}

// TestHeartbeatLoss: when the client's heartbeats stop, the server gives up on it
// once PeerTimeout has passed since the last heartbeat, not before (exact: the
// server heard it no earlier than it was written); its half stops sending (the
// session ends only once its Runner has returned) and the session ends, within a
// bound a loaded machine holds (the requirement is under 3 s; the figure is logged);
// it goes on serving others.
func TestHeartbeatLoss(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	r := dialRaw(t, addr)
	r.handshake(testKey)
	acc := udpTest(t, r, 1, Reverse, 30*time.Second, 2e6)
	legit := startUDP(t, r, acc)
	r.startHeartbeats()
	awaitData(t, legit, acc.Token) // the server is sending
	waitfor.True(t, 10*time.Second, "a heartbeat sent", func() bool { return !r.lastHeartbeat().IsZero() })
	r.stopHeartbeats()
	last := r.lastHeartbeat()
	sentThen := s.Stats().DataBytesSent
	expectClosed(t, r.c, 20*time.Second)
	gone := time.Since(last)
	sent := s.Stats().DataBytesSent
	t.Logf("the server ended the session %v after the last heartbeat (PeerTimeout %v); it sent %d bytes after the heartbeats stopped",
		gone, PeerTimeout, sent-sentThen)
	if gone < PeerTimeout || gone > PeerTimeout+10*time.Second {
		t.Errorf("the server ended the session %v after the last heartbeat; want %v..%v", gone, PeerTimeout, PeerTimeout+10*time.Second)
	}
	// Its Runner returned before the session ended: nothing more is sent.
	c := dial(t, addr, testKey)
	if got := s.Stats().DataBytesSent; got != sent {
		t.Errorf("the server sent %d bytes after the session it sent them for ended", got-sent)
	}
	runQuick(t, c, "udp", Reverse)
}

// TestICMPUnreachable: when the client's UDP socket goes away mid-test, the server's
// next send meets an ICMP port unreachable and stops; the test reports why.
func TestICMPUnreachable(t *testing.T) {
	s := &Server{Key: testKey}
	r := dialRaw(t, startServer(t, s))
	r.handshake(testKey)
	acc := udpTest(t, r, 1, Reverse, 30*time.Second, 2e6)
	legit := startUDP(t, r, acc)
	r.startHeartbeats() // the control connection stays alive: only the UDP path dies
	awaitData(t, legit, acc.Token)
	legit.Close()
	// The server's next sends meet the ICMP port unreachable; its half stops (a 30 s
	// test whose Runner returned met an error) and waits for these results.
	waitfor.True(t, 10*time.Second, "the server's Runner stopped", func() bool { return runnerReturned(s) })
	r.stopHeartbeats()
	r.send(&ResultsMsg{ID: 1, Error: "socket closed"})
	res := recvAs[*ResultsMsg](r)
	if res.Complete || !strings.Contains(res.Error, "ICMP unreachable") {
		t.Errorf("server results %+v: want incomplete, ICMP unreachable", res)
	}
}

// transportShape is bench.Transport's method set, copied (bench/remote does not import
// bench): a UDPPath can carry a bench experiment as it is.
type transportShape interface {
	Send(msgs [][]byte) (n int, err error)
	Recv(bufs [][]byte, sizes []int) (n int, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

var _ transportShape = (*UDPPath)(nil)
