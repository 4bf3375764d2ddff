package lab

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func newTestPair(t *testing.T) *Pair {
	t.Helper()
	p, err := NewPair(context.Background())
	if errors.Is(err, os.ErrPermission) || errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("lab: a veth pair between namespaces: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// TestPairTCPAndUDP: a TCP connection and a UDP exchange cross the veth pair between
// the namespaces, from PairClientAddr to PairServerAddr, and the host's namespace has
// no device of the pair.
func TestPairTCPAndUDP(t *testing.T) {
	p := newTestPair(t)
	var ln net.Listener
	var pc net.PacketConn
	if err := p.InServer(func() (err error) {
		if ln, err = net.Listen("tcp4", PairServerAddr+":0"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", PairServerAddr+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	var tc net.Conn
	var uc net.Conn
	if err := p.InClient(func() (err error) {
		if tc, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second); err != nil {
			return err
		}
		uc, err = net.Dial("udp4", pc.LocalAddr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	defer uc.Close()
	if a := <-accepted; a == nil || a.(*net.TCPAddr).IP.String() != PairClientAddr {
		t.Errorf("server accepted a connection from %v, want %s", a, PairClientAddr)
	}
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" || from.(*net.UDPAddr).IP.String() != PairClientAddr {
		t.Fatalf("server read %q from %v, err %v; want \"ping\" from %s", buf[:n], from, err, PairClientAddr)
	}
	if _, err := net.InterfaceByName(PairDevice); err == nil {
		t.Errorf("the host namespace has a %s device: the pair leaked out of its namespaces", PairDevice)
	}
}

// TestPairIsolated: the client namespace cannot reach a listener on the server
// namespace's loopback: they are two hosts, not one.
func TestPairIsolated(t *testing.T) {
	p := newTestPair(t)
	var ln net.Listener
	if err := p.InServer(func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err := p.InClient(func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Fatal("the client reached the server namespace's loopback")
	}
}
