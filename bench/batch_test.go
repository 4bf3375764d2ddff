package bench

import (
	"cmp"
	"context"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// TestBatchReachesUDPConn: NetOptions.Batch (--batch) is the UDP sockets' batch
// (udp.Options.Batch), client and server.
func TestBatchReachesUDPConn(t *testing.T) {
	for _, batch := range []int{1, 256, 1024} {
		nw := mustNetwork(t, "udp", transport.NetOptions{Batch: batch})
		l, err := transport.ReceiverNetwork(nw).Listen(t.Context(), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := l.Accept(t.Context())
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		cli, err := nw.Dial(t.Context(), l.Addr().String())
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		for name, tr := range map[string]transport.Transport{"client": cli, "server": srv} {
			if got := tr.(*udp.Conn).Batch(); got != batch {
				t.Errorf("--batch %d: the %s's udp.Conn batch is %d", batch, name, got)
			}
		}
		cli.Close()
		l.Close()
	}
}

// TestBatchSendCalls: a run's --batch reaches the UDP sockets and the report: with
// --batch 256 a batched stream of 64-byte messages hands 256 messages to each
// sendmmsg (two GSO entries of 128, or four of 64 on kernels before 6.9), more
// than the 64 the sockets' default batch allowed, and env.sockets records 256. A
// textbook cell still makes one call per datagram.
func TestBatchSendCalls(t *testing.T) {
	const count = 256 * 40
	p := Plan{Transports: []string{"udp"}, Experiments: []string{report.ExpStream}, Sizes: []int{64}, Count: count, Batch: 256,
		Warmup: NoWarmup, Net: transport.NetOptions{RecvBuffer: 4 << 20}}.WithDefaults()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t)
	e.batch, e.net = p.Batch, p.Net
	sk := grantedSockets(context.Background(), p, e)["udp"]
	if sk.Batch != 256 {
		t.Errorf("env.sockets.udp.batch = %d, want 256", sk.Batch)
	}
	for _, c := range p.cells() {
		t.Run(cmp.Or(c.params.IO, report.IOBatched), func(t *testing.T) {
			o, err := runCell(context.Background(), e, p, c)
			if err != nil {
				t.Fatal(err)
			}
			calls, dgrams := o.observed["send_calls"].(uint64), o.observed["sent_datagrams"].(uint64)
			t.Logf("%d send calls for %d datagrams", calls, dgrams)
			if dgrams != count {
				t.Fatalf("sent_datagrams %d, want %d", dgrams, count)
			}
			if c.params.IO == report.IOTextbook {
				if calls != count {
					t.Errorf("textbook: %d send calls, want %d", calls, count)
				}
				return
			}
			if sk.GSO && calls*64 >= dgrams {
				t.Errorf("--batch 256 with GSO: %d send calls for %d datagrams, want more than 64 a call", calls, dgrams)
			}
		})
	}
}
