package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func newPair(ctx context.Context) (_ *Pair, err error) {
	p := &Pair{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	// The server namespace comes first: the client's setup creates the veth pair
	// with its peer end placed straight into it.
	if p.server, err = newNetns("server", func() error { return upLoopback() }); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	serverFd, err := p.server.dup()
	if err != nil {
		return nil, err
	}
	defer unix.Close(serverFd)
	p.client, err = newNetns("client", func() error {
		if err := upLoopback(); err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: PairDevice},
			PeerName:      PairDevice, // names are per namespace
			PeerNamespace: netlink.NsFd(serverFd),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("lab: creating a veth pair: %w (the kernel has no veth driver: CONFIG_VETH)", errors.ErrUnsupported)
			}
			return fmt.Errorf("lab: creating a veth pair: %w", err)
		}
		return configureVeth(PairClientAddr)
	})
	if err != nil {
		return nil, err
	}
	if err := p.server.do(func() error { return configureVeth(PairServerAddr) }); err != nil {
		return nil, err
	}
	return p, nil
}

// upLoopback brings lo up in the calling thread's namespace.
func upLoopback() error {
	c, err := newIfconfig()
	if err != nil {
		return err
	}
	defer c.close()
	return c.up("lo")
}

// configureVeth gives PairDevice, in the calling thread's namespace, addr/24 with
// IPv6 off, and brings it up.
func configureVeth(addr string) error {
	link, err := netlink.LinkByName(PairDevice)
	if err != nil {
		return fmt.Errorf("lab: finding %s: %w", PairDevice, err)
	}
	// IPv6 goes first, so the link never sends router or neighbour solicitations.
	if err := disableIPv6(PairDevice); err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(addr).To4(), Mask: net.CIDRMask(24, 32)}}
	if err := netlink.AddrAdd(link, a); err != nil {
		return fmt.Errorf("lab: adding %s/24 to %s: %w", addr, PairDevice, os.NewSyscallError("netlink", err))
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("lab: bringing %s up: %w", PairDevice, err)
	}
	return nil
}
