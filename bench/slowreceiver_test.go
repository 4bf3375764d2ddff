package bench

import (
	"context"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestSlowReceiver: with a reader at 20 Mbit/s, TCP's sender is held to that pace and
// delivers every byte; UDP's sender outruns it, and every missing message is a
// counted drop.
func TestSlowReceiver(t *testing.T) {
	const reader = 20e6
	p := report.Params{Size: propertySize, Streams: 1, DurationS: 0.5, ReaderBps: reader}
	t.Run("tcp", func(t *testing.T) {
		o, err := runSlowReceiver(context.Background(), testEnv(t), mustNetwork(t, "tcp", transport.NetOptions{NoDelay: true}), p)
		if err != nil {
			t.Fatal(err)
		}
		m, obs := o.m, o.observed
		t.Logf("send %.3g bit/s goodput %.3g bit/s observed %v", m.SendRateBps, m.GoodputBps, obs)
		if m.LostMsgs != 0 || m.RecvBytes != m.SentBytes || obs["bytes_delivered_equal_sent"] != true {
			t.Errorf("lost %d, received %d of %d bytes: want everything", m.LostMsgs, m.RecvBytes, m.SentBytes)
		}
		// Held to the reader: once the small socket buffers are full, the sender
		// runs at the reader's pace. A reader a busy host starved catches up later,
		// so the second half's rate (the steady one) may run above the pace: the
		// bounds say "held to the reader, not unpaced" (gigabits per second).
		if r, _ := obs["send_rate_steady_bps"].(float64); r < 0.5*reader || r > 2*reader {
			t.Errorf("steady send rate %.3g bit/s, want the reader's %.3g within a factor of 2", r, reader)
		}
		if d, _ := obs["rwnd_limited_ns"].(int64); d <= 0 {
			t.Errorf("rwnd_limited_ns %v, want > 0: the receive window held the sender", obs["rwnd_limited_ns"])
		}
		if len(o.series) < 5 {
			t.Errorf("series of %d samples, want a time line", len(o.series))
		}
	})
	t.Run("udp", func(t *testing.T) {
		o, err := runSlowReceiver(context.Background(), testEnv(t), mustNetwork(t, "udp", transport.NetOptions{}), p)
		if err != nil {
			t.Fatal(err)
		}
		m, obs := o.m, o.observed
		t.Logf("send %.3g bit/s goodput %.3g bit/s observed %v", m.SendRateBps, m.GoodputBps, obs)
		if r, _ := obs["send_rate_steady_bps"].(float64); r < 2*reader {
			t.Errorf("steady send rate %.3g bit/s, want far above the reader's %.3g", r, reader)
		}
		if m.LostMsgs == 0 || m.SendRateBps < 2*reader {
			t.Errorf("lost %d at a send rate of %.3g bit/s: want the sender to outrun the reader and lose", m.LostMsgs, m.SendRateBps)
		}
		if obs["drops_account_for_missing"] != true {
			t.Errorf("observed %v: want socket + sender + network drops = missing", obs)
		}
		if m.GoodputBps > 2*reader {
			t.Errorf("goodput %.3g bit/s above the reader's pace %.3g", m.GoodputBps, reader)
		}
	})
}
