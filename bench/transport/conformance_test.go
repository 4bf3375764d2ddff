package transport_test

import (
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
)

// TestConformance runs the transport suite over every registered transport: whole
// messages, order on loopback, batch limits, deadlines, close unblocking a reader,
// and the server endpoints a connected or connectionless transport hands out.
func TestConformance(t *testing.T) {
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) {
			nw, err := transport.NetworkByName(name, transport.NetOptions{NoDelay: true})
			if err != nil {
				t.Fatal(err)
			}
			transporttest.Conformance(t, nw, transport.CapsOf(name))
		})
	}
}
