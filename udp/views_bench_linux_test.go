//go:build linux

package udp

import "testing"

// BenchmarkRecvViewsSplit is RecvViews' user-space work per datagram, without the
// system call: cutting four received GRO super-packets into views, with stamps.
func BenchmarkRecvViewsSplit(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(map[int]string{64: "64", 1400: "1400"}[size], func(b *testing.B) {
			c := &Conn{batch: 4, connected: true, rxStamps: true}
			g := &c.sys.gro
			g.buf = make([]byte, 4*groBufSize)
			g.lens, g.segs, g.trunc = make([]int, 4), make([]int, 4), make([]bool, 4)
			g.drops, g.stamp, g.peers = make([]uint32, 4), make([]int64, 4), make([]peerAddr, 4)
			per := min(128, 65507/size)
			for i := range 4 {
				g.lens[i], g.segs[i] = per*size, size
			}
			views, pkts := make([][]byte, 4*per), make([]Packet, 4*per)
			c.sys.stamps = make([]int64, len(views))
			b.ResetTimer()
			for b.Loop() {
				g.pend, g.n, g.off = 0, 4, 0
				n, _, _ := c.recvViews(views, pkts)
				if n != 4*per {
					b.Fatal(n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(4*per), "ns/dgram")
		})
	}
}
