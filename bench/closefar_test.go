package bench

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// TestServeClose: the far half of close echoes requests in order, never answers a
// close request, closes its endpoint on a request to close it, closes on a request
// to close the listener only when the endpoint is its listener, and drops what came
// after the close. Known answers: the sequence numbers echoed.
func TestServeClose(t *testing.T) {
	const size = 128
	type msg struct {
		kind wire.Kind
		flow uint32
	}
	req, endpoint, listener := msg{wire.KindRequest, 0}, msg{wire.KindEnd, closeEndpoint}, msg{wire.KindEnd, closeListener}
	for _, tc := range []struct {
		name       string
		isListener bool
		send       []msg    // seq i+1 each
		echoed     []uint64 // the seqs answered, in order
	}{
		{"endpoint closes", false, []msg{req, req, endpoint, req}, []uint64{1, 2}},
		{"listener of a connection is ignored", false, []msg{req, listener, req, endpoint, req}, []uint64{1, 3}},
		{"listener that is the endpoint closes", true, []msg{req, listener, req, endpoint}, []uint64{1}},
	} {
		for _, tr := range []string{"tcp", "udp"} {
			t.Run(tc.name+"/"+tr, func(t *testing.T) {
				e := testEnv(t)
				c, s := transporttest.Pair(t, mustNetwork(t, tr, transport.NetOptions{NoDelay: true}))
				served := make(chan error, 1)
				go func() { served <- ServeClose(context.Background(), s, size, 64, tc.isListener) }()
				var out [][]byte
				for i, m := range tc.send {
					b := make([]byte, size)
					wire.PutHeader(b, wire.Header{Kind: m.kind, Run: e.run, Flow: m.flow, Len: size, Seq: uint64(i + 1), PayloadCRC: wire.PayloadCRC(b[wire.HeaderLen:])})
					out = append(out, b)
				}
				if _, err := c.Send(out); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-served:
					if err != nil {
						t.Fatalf("ServeClose: %v", err)
					}
				case <-time.After(patience):
					s.Close()
					<-served
					t.Fatalf("ServeClose still serving %v after the close request", patience)
				}
				// Everything echoed is in the socket by now; then TCP ends, UDP goes
				// quiet. The echoes are read under a deadline no busy host reaches (TCP's
				// end comes after them); only UDP's silence after them is waited for, and
				// briefly: anything more would already be there.
				var got []uint64
				bufs, sizes := makeBufs(4, size), make([]int, 4)
				var end error
				c.SetReadDeadline(time.Now().Add(patience))
				quiet := false
				for range 100 {
					if tr == "udp" && !quiet && len(got) >= len(tc.echoed) {
						c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
						quiet = true
					}
					n, err := c.Recv(bufs, sizes)
					for i := range n {
						h, derr := wire.DecodeHeader(bufs[i][:sizes[i]])
						if derr != nil {
							t.Fatalf("echo %d: %v", i, derr)
						}
						got = append(got, h.Seq)
					}
					if err != nil {
						end = err
						break
					}
				}
				if !slices.Equal(got, tc.echoed) {
					t.Errorf("sent %v: echoed seqs %v, want %v", tc.send, got, tc.echoed)
				}
				wantEOF := tr == "tcp"
				if gotEOF := errors.Is(end, io.EOF); gotEOF != wantEOF || (!wantEOF && !transport.IsTimeout(end)) {
					t.Errorf("after the echoes: %v, want EOF %v (a timeout otherwise)", end, wantEOF)
				}
			})
		}
	}
}

// TestAskClosedPort: the far half of refused answers a request of the run with the
// same message as a reply carrying its port, and ignores anything else; the client
// reads the port from it.
func TestAskClosedPort(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			e := testEnv(t)
			e.timeout = patience // one ask, answered: a second would leave its answer where the reply below is read
			c, s := transporttest.Pair(t, mustNetwork(t, tr, transport.NetOptions{NoDelay: true}))
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- ServeRefused(ctx, s, 1024, 4242) }()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("ServeRefused: %v", err)
				}
			}()
			// Data and garbage first: ignored, unanswered.
			data := make([]byte, wire.HeaderLen)
			wire.PutHeader(data, wire.Header{Kind: wire.KindData, Run: e.run, Len: wire.HeaderLen, PayloadCRC: wire.PayloadCRC(nil)})
			if _, err := c.Send([][]byte{data, []byte("not bench's")}); err != nil {
				t.Fatal(err)
			}
			port, err := askClosedPort(e, c)
			if err != nil || port != 4242 {
				t.Fatalf("askClosedPort = %d, %v; want 4242", port, err)
			}
			// A reply is the request's size: never more than was asked with.
			req := make([]byte, 200)
			wire.PutHeader(req, wire.Header{Kind: wire.KindRequest, Run: e.run, Len: 200, Seq: 9, PayloadCRC: wire.PayloadCRC(req[wire.HeaderLen:])})
			if _, err := c.Send([][]byte{req}); err != nil {
				t.Fatal(err)
			}
			got := transporttest.RecvN(t, c, 1, 1024)[0]
			h, err := wire.DecodeHeader(got)
			if err != nil || len(got) != 200 || h.Kind != wire.KindReply || h.Seq != 4242 || h.Run != e.run {
				t.Errorf("reply of %d bytes, header %+v, err %v; want 200 bytes, a reply of run %x with seq 4242", len(got), h, err, e.run)
			}
		})
	}
}
