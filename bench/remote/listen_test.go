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
	"testing"
	"time"
)

// listenEcho is a Runner for listen-mode tests: it echoes every message of every
// client the listener takes (TCP: a connection's bytes; UDP: each datagram to its
// sender) and reports how many clients it took and replies it refused.
type listenEcho struct {
	bigger int // UDP: reply this many bytes more than received (to test the budget)
}

type listenCounts struct {
	Accepted uint64 `json:"accepted"`
	Replies  uint64 `json:"replies"`
	Refused  uint64 `json:"refused"`
	Ignored  uint64 `json:"ignored"`
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
// reading its echo, and reports how many were answered intact.
type listenClient struct {
	n        int
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
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(msg)
			n, _ = io.ReadFull(c, got[:len(msg)])
			c.Close()
		case "udp":
			p, err := d.DialPath(ctx)
			if err != nil {
				return Results{}, fmt.Errorf("client %d: %w", i, err)
			}
			p.Send([][]byte{msg})
			p.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
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
			s := &Server{Key: testKey, Runner: listenEcho{bigger: tc.bigger}}
			addr := startServer(t, s)
			n := 40
			if tc.bigger > 0 {
				n = 10 // each waits 100 ms for the reply that never comes
			}
			drv := &listenClient{n: n}
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
		expectClosed(t, bad, 3*time.Second)
		good, err := d.DialConn(ctx)
		if err != nil {
			return Results{}, err
		}
		defer good.Close()
		good.Write([]byte("hi"))
		buf := make([]byte, 2)
		good.SetReadDeadline(time.Now().Add(2 * time.Second))
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
