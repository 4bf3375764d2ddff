package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// listenEnv is a ListenEnv over a listener of this process: what a far end's
// session gives a listen-mode server half, with warnings of its own to pass on.
type listenEnv struct {
	clientEnv
	l     transport.Listener
	warns []string
}

func (e *listenEnv) Clients() transport.Listener { return e.l }
func (e *listenEnv) ClientWarnings() []string    { return e.warns }

// TestServeListen: the listen-mode server half (connect's and clients' far half)
// echoes every new client through the one accept loop until the client half is
// done, and reports a socket per TCP client, one for all UDP clients, and its
// listener's warnings. Known answer: 5 clients, 3 round trips each, every one echoed.
func TestServeListen(t *testing.T) {
	const clients, trips, size = 5, 3, 64
	for _, tc := range []struct {
		transport string
		sockets   int
	}{{"tcp", clients}, {"udp", 1}} {
		t.Run(tc.transport, func(t *testing.T) {
			nw := mustNetwork(t, tc.transport, transport.NetOptions{})
			l, err := nw.Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			env := &listenEnv{clientEnv: clientEnv{done: make(chan struct{})}, l: l, warns: []string{"the listener dropped 2 datagrams"}}
			type half struct {
				r   FarResult
				err error
			}
			res := make(chan half, 1)
			spec := FarSpec{Experiment: "listen-test", Transport: tc.transport, Size: size, Streams: 1, Listen: true}
			go func() {
				r, err := serveListen(false)(context.Background(), env, spec, nil)
				res <- half{r, err}
			}()
			msg, bufs, sizes := make([]byte, size), [][]byte{make([]byte, size)}, []int{0}
			copy(msg, "a request, echoed as it is")
			echoed := 0
			for range clients {
				c, err := nw.Dial(context.Background(), l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				for range trips {
					if _, err := c.Send([][]byte{msg}); err != nil {
						t.Fatal(err)
					}
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if n, err := c.Recv(bufs, sizes); err == nil && n == 1 && slices.Equal(bufs[0][:sizes[0]], msg) {
						echoed++
					}
				}
				defer c.Close()
			}
			close(env.done) // the client half is done
			h := <-res
			if h.err != nil || echoed != clients*trips || h.r.ServerSockets != tc.sockets || !slices.Equal(h.r.Warnings, env.warns) {
				t.Errorf("echoed %d of %d; server half: sockets %d, warnings %q, error %v; want all echoed, %d socket(s), the listener's warnings",
					echoed, clients*trips, h.r.ServerSockets, h.r.Warnings, h.err, tc.sockets)
			}
		})
	}
}
