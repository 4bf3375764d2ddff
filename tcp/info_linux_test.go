package tcp

import "testing"

// tcpEstablished is TCP_ESTABLISHED in include/net/tcp_states.h.
const tcpEstablished = 1

func TestInfo(t *testing.T) {
	client, server := loopbackPair(t)
	// A request and a reply: when the reply arrives, the request has been acked.
	// The request fits in the initial window: a larger one, window-limited behind a
	// slow reader (under -race, on a busy host), can draw a tail-loss probe, which
	// counts as a retransmission even on loopback.
	const size = 1000
	for _, p := range []struct{ from, to *Conn }{{client, server}, {server, client}} {
		if _, err := p.from.Send([][]byte{pattern(0, size)}); err != nil {
			t.Fatal(err)
		}
		if got, err := recvAll(p.to, 1, func(int) int { return size }, size); got != 1 || err != nil {
			t.Fatalf("got %d messages, %v", got, err)
		}
	}
	ci, err := client.Info()
	if err != nil {
		t.Fatal(err)
	}
	si, err := server.Info()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client: %+v", ci)
	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{"client State == TCP_ESTABLISHED", ci.State == tcpEstablished, ci.State},
		{"client RTT > 0", ci.RTT > 0, ci.RTT},
		{"client SndMSS > 0", ci.SndMSS > 0, ci.SndMSS},
		{"client SndCwnd > 0", ci.SndCwnd > 0, ci.SndCwnd},
		{"client TotalRetrans == 0 on loopback", ci.TotalRetrans == 0, ci.TotalRetrans},
		{"client BytesAcked >= one frame", ci.BytesAcked >= size+headerLen, ci.BytesAcked},
		{"server BytesReceived >= one frame", si.BytesReceived >= size+headerLen, si.BytesReceived},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %v", c.name, c.got)
		}
	}
}
