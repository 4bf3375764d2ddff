package bench

import (
	"context"
	"fmt"
	"net"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
)

// labNetwork opens the server end in the lab's server namespace and the client end in
// its client namespace; the sockets then work from anywhere, across the emulated link.
type labNetwork struct {
	Network
	lab *lab.Lab
}

func (n labNetwork) Listen(ctx context.Context, address string) (Listener, error) {
	var l Listener
	err := n.lab.InServer(func() error {
		var err error
		l, err = n.Network.Listen(ctx, address)
		return err
	})
	return l, err
}

func (n labNetwork) Dial(ctx context.Context, address string) (Transport, error) {
	var t Transport
	err := n.lab.InClient(func() error {
		var err error
		t, err = n.Network.Dial(ctx, address)
		return err
	})
	return t, err
}

// withBuffers keeps the slow-receiver's small buffers working across the lab.
func (n labNetwork) withBuffers(recv, send int) Network {
	if o, ok := n.Network.(optionable); ok {
		return labNetwork{Network: o.withBuffers(recv, send), lab: n.lab}
	}
	return n
}

// classifyData tells the emulator which UDP payloads are one tcpvsudp message each
// that the receiver accounts (data and requests), and their flow.
func classifyData(payload []byte) (flow uint32, data bool) {
	h, err := DecodeHeader(payload)
	if err != nil || (h.Kind != KindData && h.Kind != KindRequest) {
		return 0, false
	}
	return h.Flow, true
}

// injected converts the emulator's counts taken before and after a cell into the
// report's figures for that cell.
func injected(up0, down0, up1, down1 lab.Counts) *Injected {
	return &Injected{Up: linkDelta(up0, up1), Down: linkDelta(down0, down1)}
}

func linkDelta(a, b lab.Counts) LinkCounts {
	return LinkCounts{
		Packets: b.Packets - a.Packets, Dropped: b.Dropped - a.Dropped, QueueDropped: b.QueueDropped - a.QueueDropped,
		Corrupted: b.Corrupted - a.Corrupted, Duplicated: b.Duplicated - a.Duplicated, Reordered: b.Reordered - a.Reordered,
		Passed: b.Passed - a.Passed,
		Data: DataCounts{
			Packets: b.Data.Packets - a.Data.Packets, Dropped: b.Data.Dropped - a.Data.Dropped,
			QueueDropped: b.Data.QueueDropped - a.Data.QueueDropped, Corrupted: b.Data.Corrupted - a.Data.Corrupted,
			Duplicated: b.Data.Duplicated - a.Data.Duplicated, Reordered: b.Data.Reordered - a.Data.Reordered,
		},
	}
}

// labLink describes the lab link for the report's env.
func labLink(c *LabConfig, seed int64, addr string) Link {
	mtu := c.Up.MTU
	if mtu == 0 {
		mtu = lab.DefaultMTU
	}
	imp := map[string]string{"up": c.Up.String(), "down": c.Down.String(), "seed": fmt.Sprint(seed)}
	if c.Name != "" {
		imp["preset"] = c.Name
	}
	return Link{Kind: "lab", Addr: addr, MTU: mtu, Impair: imp}
}

// labAddress is where the server end listens in the lab.
func labAddress(port string) string { return net.JoinHostPort(lab.ServerAddr, port) }
