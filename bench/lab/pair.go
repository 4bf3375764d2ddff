package lab

import (
	"context"
	"errors"
	"sync"
)

// PairClientAddr and PairServerAddr are the two ends of a Pair's veth link, in a
// /24 of the RFC 2544 benchmarking range distinct from the emulated lab's.
const (
	PairClientAddr = "198.18.1.1"
	PairServerAddr = "198.18.1.2"
)

// PairDevice is the name of the veth device in each of a Pair's namespaces.
const PairDevice = "tvuv0"

// A Pair is two network namespaces, "client" and "server", joined by a veth pair: two
// hosts on one wire, kernel to kernel, with no emulator between them. Use it where a
// test needs a real peer on another host (remote mode) rather than an impaired link.
// The client namespace has PairClientAddr, the server PairServerAddr, both in one
// /24 on PairDevice, plus loopback; IPv6 is off on the link. Sockets opened inside
// InClient or InServer live in that namespace and may be used from any goroutine.
type Pair struct {
	client, server *netns

	closeOnce sync.Once
	closeErr  error
}

// NewPair builds a Pair. Without the privileges it needs, it returns an error
// wrapping os.ErrPermission that says what is missing; off Linux, an error wrapping
// errors.ErrUnsupported.
func NewPair(ctx context.Context) (*Pair, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newPair(ctx)
}

// InClient runs f on a locked OS thread inside the client namespace and waits for it
// (see Lab.InClient).
func (p *Pair) InClient(f func() error) error { return p.client.do(f) }

// InServer is InClient for the server namespace.
func (p *Pair) InServer(f func() error) error { return p.server.do(f) }

// Close closes the namespaces' descriptors: each namespace, with its end of the veth
// pair, goes when its last socket closes (a veth pair goes with either end). Close is
// idempotent.
func (p *Pair) Close() error {
	p.closeOnce.Do(func() {
		p.closeErr = errors.Join(p.client.close(), p.server.close())
	})
	return p.closeErr
}
