package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// corruptingNetwork wraps a real Network: its clients' Sends flip one payload bit of
// the data messages whose sequence numbers are in payload, and one header bit of
// those in header, after the CRCs were computed, as a link that slipped past the
// kernel's checksum would. The sockets stay real; only the known answer is arranged.
type corruptingNetwork struct {
	transport.Network
	payload, header map[uint64]bool
}

func (n corruptingNetwork) Dial(ctx context.Context, addr string) (transport.Transport, error) {
	t, err := n.Network.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &corrupting{Transport: t, n: n}, nil
}

type corrupting struct {
	transport.Transport
	n corruptingNetwork
}

func (t *corrupting) Send(msgs [][]byte) (int, error) {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m
		h, err := wire.DecodeHeader(m)
		if err != nil || h.Kind != wire.KindData {
			continue
		}
		switch {
		case t.n.payload[h.Seq]:
			out[i] = append([]byte(nil), m...)
			out[i][len(m)-1] ^= 0x10
		case t.n.header[h.Seq]:
			out[i] = append([]byte(nil), m...)
			out[i][33] ^= 0x01 // in the send time: only the header CRC notices
		}
	}
	return t.Transport.Send(out)
}

// TestStreamVerifyKnownAnswer runs streams of 10 messages whose seqs 2 and 6 carry a
// corrupted payload and seq 4 a corrupted header, over real sockets: with payloads
// verified (the default) all three are corrupt and lost; with --verify header only
// the header is caught, and the two corrupted payloads count as delivered.
func TestStreamVerifyKnownAnswer(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		for _, tc := range []struct {
			verify              wire.Verify
			corrupt, lost, recv uint64
		}{
			{wire.VerifyPayloadCRC, 3, 3, 7},
			{wire.VerifyHeaderCRC, 1, 1, 9},
		} {
			t.Run(fmt.Sprintf("%s/verify=%v", tr, tc.verify), func(t *testing.T) {
				nw := corruptingNetwork{Network: mustNetwork(t, tr, transport.NetOptions{NoDelay: true}),
					payload: map[uint64]bool{2: true, 6: true}, header: map[uint64]bool{4: true}}
				e := testEnv(t)
				e.verify = tc.verify
				e.drain = 2 * time.Second // the corrupted messages never arrive intact: the drain ends the cell
				m, w, err := runStream(context.Background(), e, nw, report.Params{Size: 1024, Streams: 1, Count: 10, RateBps: 200e6})
				if err != nil {
					t.Fatal(err)
				}
				if m.SentMsgs != 10 || m.CorruptMsgs != tc.corrupt || m.LostMsgs != tc.lost || m.RecvMsgs != tc.recv {
					t.Errorf("sent %d recv %d lost %d corrupt %d (warnings %q); want sent 10, recv %d, lost %d, corrupt %d",
						m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.CorruptMsgs, w, tc.recv, tc.lost, tc.corrupt)
				}
			})
		}
	}
}

// TestPayloadsNotVerifiedShown: a run with --verify header never shows its corrupt
// count as a measured zero: the checksum property says payloads were not verified and
// quotes no corrupt_msgs evidence, and both renderers' run lines say so. The default
// run quotes the count.
func TestPayloadsNotVerifiedShown(t *testing.T) {
	reportFor := func(verify string) *report.Report {
		up := report.LinkCounts{Packets: 5000, Corrupted: 13}
		udpUp := report.LinkCounts{Packets: 2000, Corrupted: 12, Data: report.DataCounts{Packets: 1983, Corrupted: 11}}
		r := &report.Report{Env: report.Env{Link: report.Link{Kind: "lab"}}, Config: report.Config{Verify: verify, Transports: []string{"tcp", "udp"}}, Results: []report.Result{
			{Experiment: report.ExpStream, Transport: "tcp", Params: report.Params{Size: 1024}, Metrics: report.Metrics{SentMsgs: 2000, RecvMsgs: 2000}, Injected: &report.Injected{Up: up}},
			{Experiment: report.ExpStream, Transport: "udp", Params: report.Params{Size: 1024}, Metrics: report.Metrics{SentMsgs: 2000, RecvMsgs: 1989, LostMsgs: 11}, Injected: &report.Injected{Up: udpUp}},
		}}
		r.Properties = derivedProperties(r)
		return r
	}
	checksum := func(r *report.Report) report.Property {
		for _, p := range r.Properties {
			if p.ID == "checksum" {
				return p
			}
		}
		t.Fatalf("no checksum row in %+v", r.Properties)
		return report.Property{}
	}
	for _, verify := range []string{"", "payload"} {
		p := checksum(reportFor(verify))
		if !strings.Contains(p.TCP, "0 corrupt messages reached the application") || p.Evidence["tcp_corrupt_msgs"] != uint64(0) {
			t.Errorf("verify %q: checksum row %q, evidence %v; want the measured 0 quoted", verify, p.TCP, p.Evidence)
		}
	}
	r := reportFor("header")
	p := checksum(r)
	for _, s := range []string{p.TCP, p.UDP} {
		if !strings.Contains(s, "payloads not verified") || strings.Contains(s, "0 corrupt") {
			t.Errorf("verify header: checksum row says %q; want payloads not verified, no count", s)
		}
	}
	if _, ok := p.Evidence["tcp_corrupt_msgs"]; ok || p.Evidence["payloads_verified"] != false {
		t.Errorf("verify header: evidence %v; want no corrupt_msgs and payloads_verified false", p.Evidence)
	}
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		if !strings.Contains(out, "payloads not verified (--verify header") {
			t.Errorf("%s: does not say payloads were not verified:\n%s", name, out)
		}
	}
	text, md = renderBoth(t, reportFor("payload"))
	for name, out := range map[string]string{"text": text, "markdown": md} {
		if strings.Contains(out, "not verified") {
			t.Errorf("%s: a verifying run says something was not verified:\n%s", name, out)
		}
	}
}

// BenchmarkStreamVerify runs the 128 KiB TCP stream of BenchmarkStream under each
// --verify policy: what checking every payload's CRC32C costs the receiver. Like
// BenchmarkStream, every figure covers the cell's measured phase (measuredTimer).
func BenchmarkStreamVerify(b *testing.B) {
	for _, v := range []wire.Verify{wire.VerifyPayloadCRC, wire.VerifyHeaderCRC} {
		b.Run(fmt.Sprintf("transport=tcp/size=131072/verify=%v", v), func(b *testing.B) {
			const size = 128 << 10
			nw := mustNetwork(b, "tcp", transport.NetOptions{NoDelay: true})
			e := benchEnv(b)
			e.verify = v
			b.ReportAllocs()
			measured := measuredTimer(b, e)
			m, _, err := runStream(context.Background(), e, nw, report.Params{Size: size, Streams: 1, Count: uint64(b.N)})
			if err != nil {
				b.Fatal(err)
			}
			if m.RecvMsgs != uint64(b.N) {
				b.Fatalf("received %d of %d", m.RecvMsgs, b.N)
			}
			if s := measured().Seconds(); s > 0 {
				b.ReportMetric(float64(m.RecvBytes)*8/s/1e6, "goodput-Mbit/s")
			}
			if m.CPUSecPerGB != nil {
				b.ReportMetric(*m.CPUSecPerGB, "cpu-s/GB")
			}
		})
	}
}
