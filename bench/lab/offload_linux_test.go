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

// TestTCPRetransmitsLinkDrops: across a lossy link, and one that also duplicates,
// corrupts, reorders and delays, TCP delivers every byte once and in order, and
// retransmits at least what the link dropped or corrupted, with and without offloads.
func TestTCPRetransmitsLinkDrops(t *testing.T) {
	fates := Impair{Loss: 0.01, Duplicate: 0.01, Corrupt: 0.01, Reorder: 0.01, Delay: time.Millisecond}
	for _, tc := range []struct {
		name      string
		im        Impair
		noOffload bool
	}{
		{"loss,offload", Impair{Loss: 0.02}, false},
		{"loss,no-offload", Impair{Loss: 0.02}, true},
		{"all fates,offload", fates, false},
		{"all fates,no-offload", fates, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLab(t, Config{Up: tc.im, Seed: 3, NoOffload: tc.noOffload})
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
			t.Logf("retransmits %d; link up: packets %d, dropped %d, corrupted %d, duplicated %d, reordered %d",
				info.Total_retrans, up.Packets, up.Dropped, up.Corrupted, up.Duplicated, up.Reordered)
			// Each lost or corrupted segment is resent at least once (an ACK the link
			// lost may need none: the next ACK covers it).
			if lost := up.Dropped + up.Corrupted; uint64(info.Total_retrans) < lost*9/10 {
				t.Errorf("retransmits %d, want at least about the %d packets the link dropped or corrupted", info.Total_retrans, lost)
			}
		})
	}
}
