package bench

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// TestLocalServer: the in-process peer of a request/response cell serves as the far
// end does. An echo peer answers its client's endpoint, counts one server endpoint
// and records both ends' receive modes; a listen-mode peer takes new clients (a TCP
// endpoint each, UDP's one socket for all) and says how many it accepted as it goes;
// a one-client peer's TCP listener closes once the client is accepted.
func TestLocalServer(t *testing.T) {
	for _, name := range []string{"tcp", "udp"} {
		t.Run(name+"/echo", func(t *testing.T) {
			e := testEnv(t)
			e.timeout, e.rx = patience, &rxModes{}
			ctx := context.Background()
			rp, err := openEcho(ctx, e, mustNetwork(t, name, transport.NetOptions{}), 64, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			if rp.local == nil || rp.t == nil {
				rp.finish(ctx)
				t.Fatalf("openEcho on one host: local %v, endpoint %v; want both", rp.local, rp.t)
			}
			var m report.Metrics
			err = newRequester(e, 64).roundTrip(rp.t, wire.KindRequest, &m, nil, -1)
			fr := rp.finish(ctx)
			if err != nil || m.RecvMsgs != 1 {
				t.Fatalf("round trip: err %v, %d answered; want 1", err, m.RecvMsgs)
			}
			if fr.ServerSockets != 1 || len(fr.Warnings) > 0 || fr.CPUSec != nil {
				t.Errorf("finish: %+v; want 1 server socket, no warnings, no separate CPU", fr)
			}
			socks := map[string]report.Sock{}
			e.rx.addTo(socks)
			if got := socks[name].Rx[report.ExpPingPong]; got == "" {
				t.Errorf("env.sockets.%s.rx: %v; want pingpong's receive mode", name, socks[name].Rx)
			}
		})
		t.Run(name+"/listen", func(t *testing.T) {
			e := testEnv(t)
			e.timeout = patience
			ctx := context.Background()
			rp, err := openReqPeer(ctx, e, mustNetwork(t, name, transport.NetOptions{}), FarSpec{Experiment: report.ExpConnect, Transport: name, Size: 64, Streams: 1, Listen: true}, serverHalf{half: serveConnect})
			if err != nil {
				t.Fatal(err)
			}
			defer rp.finish(ctx)
			if rp.t != nil {
				t.Fatalf("a listen-mode peer on one host has an endpoint of the client's own: %v", rp.t)
			}
			const clients = 3
			for i := range clients {
				c, err := rp.dial(ctx)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				var m report.Metrics
				err = newRequester(e, 64).roundTrip(c, wire.KindRequest, &m, nil, -1)
				c.Close()
				if err != nil || m.RecvMsgs != 1 {
					t.Fatalf("client %d: err %v, %d answered; want 1", i, err, m.RecvMsgs)
				}
			}
			want := clients
			if !transport.CapsOf(name).Connected {
				want = 1
			}
			if n, ok := rp.accepted(); !ok || n != want {
				t.Errorf("accepted() = %d, %v; want %d, true", n, ok, want)
			}
			if fr := rp.finish(ctx); fr.ServerSockets != want {
				t.Errorf("server sockets %d, want %d", fr.ServerSockets, want)
			}
		})
	}
	t.Run("udp/listen-without-half", func(t *testing.T) {
		// Listen mode's server half is the far end's one (a ServeFunc over the new
		// clients): a per-endpoint serve is refused, and no listener is left open.
		e := testEnv(t)
		_, err := openReqPeer(context.Background(), e, mustNetwork(t, "udp", transport.NetOptions{}), FarSpec{Experiment: report.ExpConnect, Transport: "udp", Size: 64, Streams: 1, Listen: true}, echoHalf(e, 64))
		if err == nil || !strings.Contains(err.Error(), "serverHalf.half") {
			t.Errorf("open = %v; want the refusal naming serverHalf.half", err)
		}
	})
	t.Run("tcp/one-client", func(t *testing.T) {
		e := testEnv(t)
		e.timeout = patience
		ctx := context.Background()
		sh := echoHalf(e, 64)
		sh.oneClient = true
		nw := mustNetwork(t, "tcp", transport.NetOptions{})
		rp, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpClose, Transport: "tcp", Size: 64, Streams: 1}, sh)
		if err != nil {
			t.Fatal(err)
		}
		defer rp.finish(ctx)
		var m report.Metrics
		if err := newRequester(e, 64).roundTrip(rp.t, wire.KindRequest, &m, nil, -1); err != nil || m.RecvMsgs != 1 {
			t.Fatalf("round trip: err %v, %d answered; want 1", err, m.RecvMsgs)
		}
		addr, err := rp.remoteAddr(report.ExpClose)
		if err != nil {
			t.Fatal(err)
		}
		c, err := nw.Dial(ctx, addr.String())
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("a new client after the first was accepted: %v; want ECONNREFUSED", err)
		}
	})
}
