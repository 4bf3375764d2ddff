package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestFanoutKnownAnswer: 4 receivers, 200 messages. UDP multicast sends each message
// once and every receiver gets all 200; TCP sends each message 4 times, once per
// connection, and every receiver gets all 200.
func TestFanoutKnownAnswer(t *testing.T) {
	const receivers, count = 4, 200
	tests := []struct {
		transport                   string
		mode                        string
		sent, copies, senderSockets uint64
		listening                   int
		multicaster, sockDropsKnown bool
		bytesRatio                  float64 // sender bytes per delivered byte
	}{
		{transport: "udp", mode: "one-to-many", sent: count, copies: 1, senderSockets: 1, listening: 0, multicaster: true, sockDropsKnown: true, bytesRatio: 0.25},
		{transport: "tcp", mode: "one-to-one", sent: receivers * count, copies: receivers, senderSockets: receivers, listening: 1, bytesRatio: 1},
	}
	for _, tc := range tests {
		t.Run(tc.transport, func(t *testing.T) {
			nw := mustNetwork(t, tc.transport, transport.NetOptions{NoDelay: true})
			if _, ok := nw.(transport.Multicaster); ok != tc.multicaster {
				t.Fatalf("%s: Multicaster %v, want %v", tc.transport, ok, tc.multicaster)
			}
			e := testEnv(t)
			e.drain = patience // TCP delivers everything: a complete fanout ends the drain at once
			p := report.Params{Size: propertySize, Streams: 1, Receivers: receivers, Count: count}
			o, err := runFanout(context.Background(), e, nw, p)
			if err != nil {
				t.Fatal(err)
			}
			m, obs := o.m, o.observed
			t.Logf("metrics %+v", m)
			t.Logf("observed %v warnings %v", obs, o.warns)
			if mc, ok := obs["multicast"].(string); ok && strings.HasPrefix(mc, "unavailable") {
				if len(o.warns) == 0 {
					t.Errorf("multicast unavailable but no warning says so")
				}
				t.Skipf("%s: %s", tc.transport, mc)
			}
			// Paced, UDP's receivers do not overflow on an idle host; a busy one can
			// starve them until their sockets drop. Then every lost delivery must be
			// a counted drop, and the known answer is what is left.
			var lost uint64
			if tc.sockDropsKnown && m.DropsSocket != nil && *m.DropsSocket+m.DropsSender > 0 {
				if m.LostMsgs != *m.DropsSocket+m.DropsSender*receivers || m.DropsNetwork == nil || *m.DropsNetwork != 0 {
					t.Errorf("lost %d, socket drops %d, sender drops %d, network %v: want lost = socket + sender × %d receivers, network 0",
						m.LostMsgs, *m.DropsSocket, m.DropsSender, deref(m.DropsNetwork), receivers)
				}
				t.Logf("host too busy for a clean run: %d socket drops, %d sender drops, all accounted", *m.DropsSocket, m.DropsSender)
				lost = m.LostMsgs
			}
			delivered := receivers*count - lost
			if m.SentMsgs != tc.sent || m.SentBytes != tc.sent*propertySize {
				t.Errorf("sent %d messages, %d bytes; want %d, %d", m.SentMsgs, m.SentBytes, tc.sent, tc.sent*propertySize)
			}
			if m.RecvMsgs != delivered || m.LostMsgs != lost || m.DupMsgs != 0 || m.CorruptMsgs != 0 || m.ForeignMsgs != 0 || m.MalformedMsgs != 0 {
				t.Errorf("recv %d lost %d dup %d corrupt %d foreign %d malformed %d; want recv %d, lost %d, the rest 0",
					m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.CorruptMsgs, m.ForeignMsgs, m.MalformedMsgs, delivered, lost)
			}
			if want := delivered * propertySize; m.RecvBytes != want {
				t.Errorf("recv bytes %d, want %d", m.RecvBytes, want)
			}
			want := map[string]any{
				"mode": tc.mode, "receivers": receivers, "receiver_sockets": receivers,
				"sender_sockets": int(tc.senderSockets), "copies_per_message": tc.copies, "listening_sockets": tc.listening,
				"deliveries": delivered, "delivered_min": uint64(count), "delivered_max": uint64(count),
				"sender_bytes_per_delivered_byte": tc.bytesRatio,
			}
			if lost > 0 { // which receivers lost them is the host's doing
				for _, k := range []string{"delivered_min", "delivered_max", "sender_bytes_per_delivered_byte"} {
					delete(want, k)
				}
			}
			for k, v := range want {
				if obs[k] != v {
					t.Errorf("observed %s = %v (%T), want %v (%T)", k, obs[k], obs[k], v, v)
				}
			}
			if m.ServerSockets != receivers {
				t.Errorf("server sockets %d, want %d (one per receiver)", m.ServerSockets, receivers)
			}
			if m.GoodputBps <= 0 || m.RecvIntervalS <= 0 {
				t.Errorf("goodput %v over %v s, want both > 0", m.GoodputBps, m.RecvIntervalS)
			}
			if c, ok := obs["cpu_ns_per_delivery"].(float64); !ok || c <= 0 {
				t.Errorf("cpu_ns_per_delivery %v, want > 0", obs["cpu_ns_per_delivery"])
			}
			if (m.DropsSocket != nil) != tc.sockDropsKnown {
				t.Errorf("drops_socket %v, want known %v", deref(m.DropsSocket), tc.sockDropsKnown)
			}
			if wantWarns := min(lost, 1); uint64(len(o.warns)) != wantWarns {
				t.Errorf("warnings %v, want %d (one saying what never arrived, if anything)", o.warns, wantWarns)
			}
		})
	}
}

// TestFanoutOneToOneFallback: a UDP network seen without its Multicaster capability
// is one-to-one like TCP. Its listener hands out one socket only, so the experiment
// must fail with an error, in bounded time, rather than count it as N receivers.
func TestFanoutOneToOneFallback(t *testing.T) {
	type plain struct{ transport.Network } // hides Multicaster
	nw := plain{mustNetwork(t, "udp", transport.NetOptions{})}
	if _, ok := transport.Network(nw).(transport.Multicaster); ok {
		t.Fatal("wrapped network still a Multicaster")
	}
	e := testEnv(t)
	_, err := runFanout(context.Background(), e, nw, report.Params{Size: propertySize, Streams: 1, Receivers: 2, Count: 10})
	if err == nil || !strings.Contains(err.Error(), "receiver 1") {
		t.Fatalf("err %v, want receiver 1 failing to get its own endpoint", err)
	}
}

// noMulticast is a Multicaster whose host cannot deliver to groups.
type noMulticast struct{ transport.Network }

func (noMulticast) ListenGroup(ctx context.Context, group string) (transport.Transport, string, error) {
	return nil, "", fmt.Errorf("udp: multicast probe: none arrived: %w (enable it so)", errors.ErrUnsupported)
}

func (noMulticast) DialGroup(ctx context.Context, group string) (transport.Transport, error) {
	return nil, fmt.Errorf("udp: dial group: %w", errors.ErrUnsupported)
}

// TestFanoutMulticastUnavailable: a transport that offers one-to-many delivery on a
// host that cannot do it yields no figures and no error: a warning and the
// observation "multicast" carry the reason, so the run goes on and says why.
func TestFanoutMulticastUnavailable(t *testing.T) {
	nw := noMulticast{mustNetwork(t, "udp", transport.NetOptions{})}
	o, err := runFanout(context.Background(), testEnv(t), nw, report.Params{Size: propertySize, Streams: 1, Receivers: 4, Count: 10})
	if err != nil {
		t.Fatalf("err %v, want none: the outcome carries the reason", err)
	}
	mc, _ := o.observed["multicast"].(string)
	if !strings.HasPrefix(mc, "unavailable: ") || !strings.Contains(mc, "enable it so") {
		t.Errorf("observed multicast %q, want \"unavailable: \" and the reason", mc)
	}
	if len(o.warns) != 1 || !strings.Contains(o.warns[0], "enable it so") {
		t.Errorf("warnings %q, want one that gives the reason", o.warns)
	}
	if o.m.SentMsgs != 0 || o.m.RecvMsgs != 0 {
		t.Errorf("metrics %+v, want none", o.m)
	}
}
