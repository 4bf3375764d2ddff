package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// TestLabDroppedBeforeLinkCapture checks "dropped before the link" against packet
// captures, from outside the tool: a packet socket on the client's TUN device sees
// every data datagram the client's kernel hands the device (its taps run before the
// device's full queue drops one), and one on the server's device every data datagram
// the emulator passed. Across a clean link, what the link took in is what it passed,
// so the measured messages dropped before the link are the first count less the
// second. An unpaced warm-up overflows the device queue first: those drops, and the
// end markers', are not the measured messages' and must not be counted.
func TestLabDroppedBeforeLinkCapture(t *testing.T) {
	const count = 20000
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{Seed: 1, Classify: classifyData})
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("lab: needs CAP_NET_ADMIN: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	client, err := startDataCapture(t, l.InClient, unix.PACKET_OUTGOING)
	if err != nil {
		t.Fatalf("capture on the client's device: %v", err)
	}
	server, err := startDataCapture(t, l.InServer, unix.PACKET_HOST)
	if err != nil {
		t.Fatalf("capture on the server's device: %v", err)
	}

	// An unpaced UDP stream whose unpaced warm-up outruns the emulator.
	p := Plan{Transports: []string{"udp"}, Experiments: []string{report.ExpStream}, Sizes: []int{1200}, Count: count,
		Warmup: 100 * time.Millisecond, Seed: 1, Net: transport.NetOptions{RecvBuffer: 4 << 20}}.WithDefaults()
	e := &runEnv{epoch: time.Now(), run: newRunID(), seed: p.Seed, address: labAddress("0"),
		warmup: p.warmup(), drain: p.drain(), timeout: p.Timeout, batch: p.Batch, lab: l}
	o, err := runCell(ctx, e, p, p.cells()[0])
	clientData, cerr := client.stop()
	serverData, serr := server.stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(cerr, serr); err != nil {
		t.Fatal(err)
	}
	m := o.m
	if o.injected == nil {
		t.Fatal("no injected counts")
	}
	up := o.injected.Up
	t.Logf("sent %d (refused %d), lost %d; captured: %d data datagrams at the client's device, %d at the server's; link up: %+v",
		m.SentMsgs, m.DropsSender, m.LostMsgs, clientData, serverData, up)
	if sent := m.SentMsgs - m.DropsSender; clientData != sent {
		t.Errorf("the client's device saw %d data datagrams, the sender sent %d (less refused): want equal", clientData, sent)
	}
	if want := clientData - serverData; up.DeviceDropped != want {
		t.Errorf("dropped before the link: got %d, want %d (data datagrams captured at the client's device %d - at the server's %d)",
			up.DeviceDropped, want, clientData, serverData)
	}
	if clientData == serverData {
		t.Log("the sender did not outrun the emulator this time: the measured messages lost none before the link")
	}
}

// dataCapture counts the tcpvsudp data datagrams (IPv4, UDP, kind data) one packet
// socket sees on a lab namespace's TUN device in one direction.
type dataCapture struct {
	fd   int
	done chan struct{}  // closed by stop
	wg   sync.WaitGroup // the reader
	n    uint64         // data datagrams seen; read after wg.Wait
	err  error          // the reader's; read after wg.Wait
}

// startDataCapture opens the packet socket inside a namespace (in: lab.InClient or
// InServer) and reads it until stop. pktType picks the direction.
func startDataCapture(tb testing.TB, in func(func() error) error, pktType uint8) (*dataCapture, error) {
	tb.Helper()
	c := &dataCapture{fd: -1, done: make(chan struct{})}
	err := in(func() error {
		ifi, err := net.InterfaceByName(lab.DeviceName)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // raw: PACKET_VNET_HDR needs it; a TUN device has no link header
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		c.fd = fd
		// Keep IPv4 UDP packets whose payload's kind byte (header offset 5, IP offset
		// 20+8+5: the lab's packets carry no IP options) says data, 96 bytes of each.
		filter := []unix.SockFilter{
			{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: unix.IPPROTO_UDP},
			{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 20 + 8 + 5},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(wire.KindData)},
			{Code: unix.BPF_RET | unix.BPF_K, K: 96},
			{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		}
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return os.NewSyscallError("setsockopt SO_ATTACH_FILTER", err)
		}
		// The lab's devices carry UDP super-packets (segmentation offload): the
		// virtio_net_hdr before each says how many datagrams one holds.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return os.NewSyscallError("setsockopt PACKET_VNET_HDR", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUFFORCE", err)
		}
		tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
		return os.NewSyscallError("bind", unix.Bind(fd, sa))
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, err
	}
	tb.Cleanup(func() { c.stop() })
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.err = c.read(pktType)
	}()
	return c, nil
}

func (c *dataCapture) read(pktType uint8) error {
	buf := make([]byte, vnetHdrLen+128)
	stopping := false
	for {
		if !stopping {
			select {
			case <-c.done:
				stopping = true // read what is queued, then stop
			default:
			}
		}
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			if stopping {
				return c.complete()
			}
			continue
		case err != nil:
			return os.NewSyscallError("recvfrom", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == pktType {
			c.n += datagramsIn(buf[:n])
		}
	}
}

// complete fails when the kernel dropped packets the capture should have seen.
func (c *dataCapture) complete() error {
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
	}
	if st.Drops > 0 {
		return fmt.Errorf("capture incomplete: the packet socket dropped %d packets", st.Drops)
	}
	return nil
}

// stop ends the capture after reading what is queued and returns its count.
func (c *dataCapture) stop() (uint64, error) {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.wg.Wait()
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	return c.n, c.err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// vnetHdrLen is the size of the virtio_net_hdr a PACKET_VNET_HDR socket puts before
// each packet.
const vnetHdrLen = 10

// datagramsIn counts the UDP datagrams in one captured packet, b its vnet header and
// the first bytes of an IPv4 UDP packet: 1, or for a super-packet (GSO type set) its
// UDP payload over the segment size, rounded up.
func datagramsIn(b []byte) uint64 {
	if len(b) < vnetHdrLen+28 {
		return 1
	}
	gsoType, gsoSize := b[1], int(binary.LittleEndian.Uint16(b[4:]))
	if gsoType == 0 || gsoSize == 0 {
		return 1
	}
	udpLen := int(binary.BigEndian.Uint16(b[vnetHdrLen+24:]))
	return uint64(max(1, (udpLen-8+gsoSize-1)/gsoSize))
}

// TestLabCellWindow: a cell's link figures hold its own packets only. Across a link
// that only delays (20 ms each way), every packet the link takes in it passes, so in
// each cell's window passed = taken in, both ways, exactly: a packet of the cell
// before still in flight at the window's start, or one of this cell's still queued at
// its end, breaks the equality. And a paced UDP stream's link took in exactly its
// measured messages.
func TestLabCellWindow(t *testing.T) {
	const count = 1000
	im := lab.Impair{Delay: 20 * time.Millisecond}
	p := Plan{Experiments: []string{report.ExpStream}, Sizes: []int{1024}, Count: count, RateBps: 20e6, Repeat: 2,
		Warmup: 50 * time.Millisecond, Drain: patience, Seed: 5, Net: transport.NetOptions{RecvBuffer: 4 << 20}, Lab: &LabConfig{Up: im, Down: im},
		UDPIO: []string{report.IOBatched}}
	var injected []*report.Injected // every run's, in order, from the progress events
	p.Progress = func(ev ProgressEvent) {
		if ev.Done && ev.Result != nil {
			injected = append(injected, ev.Result.Injected)
		}
	}
	rep, err := Run(context.Background(), p)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("lab: needs CAP_NET_ADMIN: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(injected) != 4 {
		t.Fatalf("%d cells ran, want 4 (udp and tcp, twice)", len(injected))
	}
	for i, in := range injected {
		if in == nil {
			t.Fatalf("cell %d: no injected counts", i+1)
		}
		t.Logf("cell %d: up %+v down %+v", i+1, in.Up, in.Down)
		for _, d := range []struct {
			name string
			c    report.LinkCounts
		}{{"up", in.Up}, {"down", in.Down}} {
			if d.c.Passed != d.c.Packets {
				t.Errorf("cell %d, %s: the link took in %d packets and passed %d: want equal (a delay loses nothing)", i+1, d.name, d.c.Packets, d.c.Passed)
			}
		}
	}
	for _, r := range rep.Results {
		if r.Transport == "udp" && r.Injected != nil && r.Injected.Up.Data.Packets != count {
			t.Errorf("udp: the link took in %d data datagrams, want %d", r.Injected.Up.Data.Packets, count)
		}
	}
}
