package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestClose: a TCP reader sees EOF when its peer closes, a UDP reader sees nothing;
// closing a TCP listener refuses new clients while the accepted one is still
// answered, closing UDP's one socket silences everyone. The round trips that must
// be answered get a timeout no busy host reaches; those that must not are ended by
// the ICMP refusal on loopback, not by the timeout.
func TestClose(t *testing.T) {
	env := func(t *testing.T) *runEnv {
		e := testEnv(t)
		e.timeout = patience
		return e
	}
	t.Run("tcp", func(t *testing.T) {
		o, err := runClose(context.Background(), env(t), mustNetwork(t, "tcp", transport.NetOptions{NoDelay: true}), report.Params{Size: propertySize})
		if err != nil {
			t.Fatal(err)
		}
		obs := o.observed
		if obs["peer_close_seen"] != true || !strings.Contains(obs["peer_close_result"].(string), "EOF") {
			t.Errorf("observed %v: want EOF seen", obs)
		}
		if obs["listener_closed_existing_answered"] != true || obs["listener_closed_new_refused"] != true {
			t.Errorf("observed %v: want the accepted connection answered and a new one refused", obs)
		}
	})
	t.Run("udp", func(t *testing.T) {
		o, err := runClose(context.Background(), env(t), mustNetwork(t, "udp", transport.NetOptions{}), report.Params{Size: propertySize})
		if err != nil {
			t.Fatal(err)
		}
		obs := o.observed
		if obs["peer_close_seen"] != false {
			t.Errorf("observed %v: want nothing seen", obs)
		}
		if obs["listener_closed_existing_answered"] != false || obs["listener_closed_new_client"] == "answered" {
			t.Errorf("observed %v: want no answers once the one socket is closed", obs)
		}
	})
}
