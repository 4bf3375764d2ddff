package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// listenEcho is a Runner for listen-mode tests: it echoes every message of every
// client the listener takes (TCP: a connection's bytes; UDP: each datagram to its
// sender) and reports how many clients it took and replies it refused.
type listenEcho struct {
	bigger  int            // UDP: reply this many bytes more than received (to test the budget)
	handled *atomic.Uint64 // if set, counts the UDP datagrams answered or refused
}

type listenCounts struct {
	ListenPort int    `json:"listen_port"` // where the new clients reached the server (Data.ListenAddr)
	Accepted   uint64 `json:"accepted"`
	Replies    uint64 `json:"replies"`
	Refused    uint64 `json:"refused"`
	Ignored    uint64 `json:"ignored"`
}

func (listenEcho) Check(req TestRequest) error {
	if !req.Listen {
		return errors.New("listen: want true")
	}
	return nil
}

func (r listenEcho) Serve(ctx context.Context, d *Data) (Results, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with ctx: Serve cancels it when it returns
		select {
		case <-d.PeerDone(): // the client's results: it has no more clients
			cancel()
		case <-ctx.Done():
		}
	}()
	var c listenCounts
	switch a := d.ListenAddr().(type) {
	case *net.TCPAddr:
		c.ListenPort = a.Port
	case *net.UDPAddr:
		c.ListenPort = a.Port
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if d.Listener != nil {
		buf := make([]byte, 65536)
		for ctx.Err() == nil {
			d.Listener.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, from, err := d.Listener.ReadFrom(buf)
			if err != nil {
				continue
			}
			if err := d.Listener.WriteTo(buf[:n+r.bigger], from); err == nil {
				c.Replies++
			}
			if r.handled != nil {
				r.handled.Add(1)
			}
		}
		c.Refused, c.Ignored = d.Listener.Refused(), d.Listener.Ignored()
	} else {
		for {
			conn, err := d.Accept(ctx)
			if err != nil {
				break
			}
			wg.Go(func() {
				defer conn.Close()
				io.Copy(conn, conn)
			})
		}
		c.Accepted = d.Accepted()
	}
	b, _ := json.Marshal(c)
	return Results{Complete: true, Counters: b}, nil
}

// listenClient dials n clients one after another, each sending one message and
// reading its echo (waiting up to 10 s for it), and reports how many were answered
// intact. With handled set no echo is expected: each UDP client waits until the
// server has handled its message (answered or refused it), then takes what has
// arrived.
type listenClient struct {
	n        int
	handled  *atomic.Uint64 // listenEcho's
	answered int
}

func (lc *listenClient) Drive(ctx context.Context, d *Data) (Results, error) {
	msg := bytes.Repeat([]byte("tcpvsudp"), 16)
	for i := range lc.n {
		got := make([]byte, len(msg)+64)
		var n int
		switch d.Request.Transport {
		case "tcp":
			c, err := d.DialConn(ctx)
			if err != nil {
				return Results{}, fmt.Errorf("client %d: %w", i, err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write(msg)
			n, _ = io.ReadFull(c, got[:len(msg)])
			c.Close()
		case "udp":
			p, err := d.DialPath(ctx)
			if err != nil {
				return Results{}, fmt.Errorf("client %d: %w", i, err)
			}
			p.Send([][]byte{msg})
			p.SetReadDeadline(time.Now().Add(10 * time.Second))
			if lc.handled != nil {
				waitfor.Cond(10*time.Second, func() bool { return lc.handled.Load() >= uint64(i+1) })
				// A reply, had the server sent one, is on this host already.
				p.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			}
			sizes := []int{0}
			if k, _ := p.Recv([][]byte{got}, sizes); k == 1 {
				n = sizes[0]
			}
			p.Close()
		}
		if n == len(msg) && bytes.Equal(got[:n], msg) {
			lc.answered++
		}
	}
	return Results{Complete: true}, nil
}

// TestListen: a listen-mode test keeps taking new clients after start, each from a
// socket of its own, and each is answered; over UDP a reply larger than what its
// address sent is refused (amplification budget, factor 1) and never sent.
func TestListen(t *testing.T) {
	for _, tc := range []struct {
		transport string
		bigger    int
	}{{"tcp", 0}, {"udp", 0}, {"udp", 1}} {
		t.Run(fmt.Sprintf("%s/bigger=%d", tc.transport, tc.bigger), func(t *testing.T) {
			var handled *atomic.Uint64
			n := 40
			if tc.bigger > 0 {
				handled, n = new(atomic.Uint64), 10 // each waits for the server to refuse its reply
			}
			s := &Server{Key: testKey, Runner: listenEcho{bigger: tc.bigger, handled: handled}}
			addr := startServer(t, s)
			drv := &listenClient{n: n, handled: handled}
			c, err := (&Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: drv}).Dial(t.Context(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := c.Run(t.Context(), TestRequest{Experiment: "listen-echo", Transport: tc.transport, Size: 128,
				Duration: 5 * time.Second, Streams: 1, Direction: Bidir, Listen: true})
			if err != nil {
				t.Fatal(err)
			}
			var sc listenCounts
			if err := json.Unmarshal(res.Server.Counters, &sc); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d of %d clients answered; server %+v", drv.answered, n, sc)
			if sc.ListenPort == 0 {
				t.Errorf("the server's Data.ListenAddr has no %s port", tc.transport)
			}
			switch {
			case tc.transport == "tcp":
				if drv.answered != 40 || sc.Accepted != 40 {
					t.Errorf("answered %d, server accepted %d; want 40 and 40", drv.answered, sc.Accepted)
				}
			case tc.bigger == 0:
				if drv.answered != 40 || sc.Replies != 40 || sc.Refused != 0 {
					t.Errorf("answered %d, server replies %d, refused %d; want 40, 40, 0", drv.answered, sc.Replies, sc.Refused)
				}
			default:
				if drv.answered != 0 || sc.Replies != 0 || sc.Refused != 10 {
					t.Errorf("answered %d, server replies %d, refused %d; want every larger reply refused: 0, 0, 10", drv.answered, sc.Replies, sc.Refused)
				}
			}
		})
	}
}

// TestListenRejects: a listen-mode TCP listener closes connections that do not open
// with the token; a session whose hello did not list the capability is refused a
// listen test, naming it.
func TestListenRejects(t *testing.T) {
	s := &Server{Key: testKey, Runner: listenEcho{}}
	addr := startServer(t, s)

	// No capability: refused.
	r := dialRaw(t, addr)
	r.handshake(testKey)
	r.send(&Test{ID: 1, Experiment: "listen-echo", Transport: "tcp", Size: 100, DurationMS: 1000, Streams: 1, Direction: "bidir", Listen: true})
	if ref := recvAs[*Refuse](r); ref.ID != 1 || !bytes.Contains([]byte(ref.Error), []byte("listen")) {
		t.Errorf("refuse %+v, want test 1 refused naming listen", ref)
	}

	// Bad token on a listening port: closed, counted; the test goes on.
	before := s.Stats().DataRejected
	drv := driverFunc(func(ctx context.Context, d *Data) (Results, error) {
		bad, err := net.Dial("tcp", d.listenAddr.String())
		if err != nil {
			return Results{}, err
		}
		defer bad.Close()
		bad.Write(bytes.Repeat([]byte{0xee}, tokenLen))
		expectClosed(t, bad, 10*time.Second)
		good, err := d.DialConn(ctx)
		if err != nil {
			return Results{}, err
		}
		defer good.Close()
		good.Write([]byte("hi"))
		buf := make([]byte, 2)
		good.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "hi" {
			return Results{}, fmt.Errorf("echo after a rejected connection: %q, %v", buf, err)
		}
		return Results{Complete: true}, nil
	})
	c, err := (&Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: drv}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(t.Context(), TestRequest{Experiment: "listen-echo", Transport: "tcp", Size: 100, Duration: 3 * time.Second,
		Streams: 1, Direction: Bidir, Listen: true}); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().DataRejected - before; got != 1 {
		t.Errorf("rejected data connections %d, want the one with the wrong token", got)
	}
}

type driverFunc func(ctx context.Context, d *Data) (Results, error)

func (f driverFunc) Drive(ctx context.Context, d *Data) (Results, error) { return f(ctx, d) }

// TestClientKilledListening: a client that vanishes while its listen-mode test has
// clients open (TCP connections accepted and echoing, UDP clients answered) leaves
// the server serving: the next client's listen test runs, and every descriptor the
// test opened is released.
func TestClientKilledListening(t *testing.T) {
	s := &Server{Key: testKey, Runner: listenEcho{}}
	addr := startServer(t, s)
	idle := func() {
		waitfor.True(t, 15*time.Second, "every control connection closed", func() bool { return s.Stats().Conns == 0 })
	}
	legit := func(transport string) {
		drv := &listenClient{n: 5}
		c, err := (&Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: drv}).Dial(t.Context(), addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Run(t.Context(), TestRequest{Experiment: "listen-echo", Transport: transport, Size: 128, Duration: 3 * time.Second,
			Streams: 1, Direction: Bidir, Listen: true}); err != nil || drv.answered != 5 {
			t.Fatalf("%s listen test after a killed client: %v, %d of 5 answered", transport, err, drv.answered)
		}
	}
	legit("tcp")
	idle()
	baseFDs := openFDs()
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.send(&Hello{Software: "raw test client", Caps: []string{CapListen}})
			ch := recvAs[*Challenge](r)
			cn, _ := newNonce()
			r.send(&Auth{Nonce: cn, MAC: ClientMAC(testKey, ch.Nonce, cn)})
			recvAs[*AuthOK](r)
			r.send(&Test{ID: 1, Experiment: "listen-echo", Transport: transport, Size: 128, DurationMS: 10000, Streams: 1, Direction: "bidir", Listen: true})
			acc := recvAs[*Accept](r)
			var clients []net.Conn
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			msg := appendDatagram(nil, acc.Token, kindData, []byte("hello, listener"))
			switch transport {
			case "tcp":
				tcpData(t, acc)
				r.send(&Start{ID: 1})
				recvAs[*Start](r)
				for range 20 { // clients the listener took and echoes for, left open
					c := tcpData(t, acc)
					c.Write([]byte("hello"))
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					buf := make([]byte, 5)
					if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
						t.Fatalf("tcp client: %q, %v; want its hello back", buf, err)
					}
					clients = append(clients, c)
				}
			case "udp":
				if len(acc.Ports) != 2 {
					t.Fatalf("accept %+v: want the stream's port and the listener's", acc)
				}
				proof, err := probe(t.Context(), udpTo(t, acc.Ports[0]), acc.Token)
				if err != nil {
					t.Fatal(err)
				}
				r.send(&Start{ID: 1, Paths: [][]byte{proof}})
				recvAs[*Start](r)
				for range 20 { // clients, each from a socket of its own, answered
					c := udpTo(t, acc.Ports[1])
					c.Write(msg)
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					buf := make([]byte, 256)
					if n, err := c.Read(buf); err != nil || n != len(msg) {
						t.Fatalf("udp client: %d bytes, %v; want its %d back", n, err, len(msg))
					}
					clients = append(clients, c)
				}
			}
			r.c.Close() // the client vanishes, its clients still open
			idle()
			for _, c := range clients {
				c.Close()
			}
			clients = nil
			legit(transport)
			idle()
		})
	}
	if baseFDs >= 0 {
		waitfor.True(t, 10*time.Second, "descriptors released", func() bool { return openFDs() <= baseFDs })
	}
}
