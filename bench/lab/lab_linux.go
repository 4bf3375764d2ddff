package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"
)

// maxPacket is the reader's buffer: the largest IP packet, whatever the MTU.
const maxPacket = 65535

func newLab(ctx context.Context, cfg Config) (_ *Lab, err error) {
	upMTU, err := linkMTU("Up", cfg.Up.MTU)
	if err != nil {
		return nil, err
	}
	downMTU, err := linkMTU("Down", cfg.Down.MTU)
	if err != nil {
		return nil, err
	}
	client, server := netip.MustParseAddr(ClientAddr), netip.MustParseAddr(ServerAddr)
	line := DefaultLine
	if cfg.Line != nil {
		line = *cfg.Line
	}
	if !(line.RateBps >= 0) || line.PerPacket < 0 {
		return nil, fmt.Errorf("lab: Line: rate must be 0 (none) or above, per-packet cost 0 or above; got %v bit/s, %v", line.RateBps, line.PerPacket)
	}

	l := &Lab{}
	defer func() {
		if err != nil {
			l.Close() // whatever was made so far
		}
	}()
	// Each device's MTU is what its side sends: the client's the up link's, the
	// server's the down link's.
	var clientTUN, serverTUN *os.File
	side := func(tun **os.File, local, peer netip.Addr, mtu int) func() error {
		return func() error {
			f, err := newSide(local, peer, mtu, line)
			if err == nil {
				*tun = f
				l.tuns = append(l.tuns, f) // closed by Close, even if New fails later
			}
			return err
		}
	}
	if l.client, err = newNetns("client", side(&clientTUN, client, server, upMTU)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.server, err = newNetns("server", side(&serverTUN, server, client, downMTU)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The links' out functions write to the opposite device; a write error is the
	// link's to count. After Close, writes fail with os.ErrClosed.
	l.up = NewLink(cfg.Up, cfg.Seed, cfg.Classify, func(pkt []byte) error {
		_, err := serverTUN.Write(pkt)
		return err
	})
	l.down = NewLink(cfg.Down, cfg.Seed^downSeedMix, cfg.Classify, func(pkt []byte) error {
		_, err := clientTUN.Write(pkt)
		return err
	})
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	for _, link := range []*Link{l.up, l.down} {
		l.wg.Go(func() {
			if err := link.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				l.fail(fmt.Errorf("lab: link: %w", err))
			}
		})
	}
	l.wg.Go(func() { l.read("client", clientTUN, l.up) })
	l.wg.Go(func() { l.read("server", serverTUN, l.down) })
	return l, nil
}

// linkMTU checks one direction's MTU; 0 means DefaultMTU.
func linkMTU(dir string, mtu int) (int, error) {
	switch {
	case mtu == 0:
		return DefaultMTU, nil
	case mtu < 576 || mtu > 65535:
		return 0, fmt.Errorf("lab: %s.MTU: must be 576..65535 bytes, got %d", dir, mtu)
	}
	return mtu, nil
}

// newSide makes one end of the link in the calling thread's network namespace: the
// TUN device, configured with address local, peer and mtu, up, behind line.
func newSide(local, peer netip.Addr, mtu int, line Line) (*os.File, error) {
	tun, err := openTUN(DeviceName)
	if err != nil {
		return nil, err
	}
	if err := configureLink(DeviceName, local, peer, mtu); err != nil {
		tun.Close()
		return nil, err
	}
	if err := setLine(DeviceName, line, mtu); err != nil {
		tun.Close()
		return nil, err
	}
	return tun, nil
}

// read hands every packet the kernel sends out of tun to link, until tun is closed.
func (l *Lab) read(side string, tun *os.File, link *Link) {
	buf := make([]byte, maxPacket)
	for {
		n, err := tun.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				l.fail(fmt.Errorf("lab: reading the %s TUN device: %w", side, err))
			}
			return
		}
		link.Input(buf[:n], time.Now())
	}
}
