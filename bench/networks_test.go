package bench

import (
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

func testNetworks(tb testing.TB) []transport.Network {
	tb.Helper()
	var nws []transport.Network
	for _, name := range transport.Names() {
		nw, err := transport.NetworkByName(name, transport.NetOptions{NoDelay: true})
		if err != nil {
			tb.Fatal(err)
		}
		nws = append(nws, nw)
	}
	return nws
}
