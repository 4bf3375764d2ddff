package bench

import (
	"context"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestRefused: TCP is refused while dialling; UDP's dial and first send succeed and a
// connected socket learns of the refusal afterwards; an unconnected one never does.
func TestRefused(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		o, err := runRefused(context.Background(), testEnv(t), mustNetwork(t, "tcp", transport.NetOptions{}), report.Params{Size: propertySize})
		if err != nil {
			t.Fatal(err)
		}
		obs := o.observed
		if obs["refused"] != true || obs["refused_at"] != "dial" || obs["dial_error"] == "" {
			t.Fatalf("observed %v: want refused at dial with an error", obs)
		}
		if _, ok := obs["unconnected_send_error"]; ok {
			t.Errorf("tcp has no unconnected send, observed %v", obs)
		}
	})
	t.Run("udp", func(t *testing.T) {
		o, err := runRefused(context.Background(), testEnv(t), mustNetwork(t, "udp", transport.NetOptions{}), report.Params{Size: propertySize})
		if err != nil {
			t.Fatal(err)
		}
		obs := o.observed
		if obs["dial_error"] != "" || obs["first_send_error"] != "" {
			t.Fatalf("observed %v: want dial and first send to succeed", obs)
		}
		if obs["refused"] != true || obs["refused_at"] != "after send" {
			t.Fatalf("observed %v: want ECONNREFUSED after the send", obs)
		}
		if d, _ := obs["detect_ns"].(int64); d <= 0 {
			t.Errorf("detect_ns %v, want > 0", obs["detect_ns"])
		}
		if obs["unconnected_send_error"] != "" || obs["unconnected_told"] != false {
			t.Errorf("observed %v: want an unconnected send that succeeds and is told nothing", obs)
		}
	})
}
