package lab

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTCPRetransmitsLinkDrops: across a lossy link TCP delivers every byte once and
// in order, and retransmits about what the link dropped (each drop costs at least
// one retransmission; a few more are spurious), with and without offloads.
func TestTCPRetransmitsLinkDrops(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noOffload bool
	}{{"offload", false}, {"no-offload", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLab(t, Config{Up: Impair{Loss: 0.02}, Seed: 3, NoOffload: tc.noOffload})
			client, server := tcpPair(t, l)
			want := make([]byte, 8<<20)
			rand.Read(want)
			errc := make(chan error, 1)
			go func() {
				_, err := client.Write(want)
				errc <- err
			}()
			server.SetReadDeadline(time.Now().Add(60 * time.Second))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(server, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("received sha256 %x, want %x", sha256.Sum256(got), sha256.Sum256(want))
			}
			var info *unix.TCPInfo
			rc, _ := client.(*net.TCPConn).SyscallConn()
			var ierr error
			rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
			if ierr != nil {
				t.Fatal(ierr)
			}
			up, _ := settledCounts(t, l)
			t.Logf("retransmits %d; link up: packets %d, dropped %d", info.Total_retrans, up.Packets, up.Dropped)
			if uint64(info.Total_retrans) < up.Dropped*9/10 {
				t.Errorf("retransmits %d, want at least about the %d packets the link dropped", info.Total_retrans, up.Dropped)
			}
		})
	}
}
