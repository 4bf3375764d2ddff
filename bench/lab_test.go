package bench

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestLabKnownAnswers runs seeded impairments across the emulated link and checks
// that what the transports measured is exactly what the link injected: UDP's losses,
// duplicates and reorderings one for one, and TCP delivering everything, in order,
// once, with nothing corrupt reaching the application.
//
// The stream is paced and the receive buffer large, so the UDP receiver does not
// overflow on an idle host; a busy one can starve it for long enough that its socket
// drops. Those drops are counted (host: the socket's and the sender's drops; the
// socket's include the corrupted datagrams, whose checksum fails there). Then every
// loss is still accounted for, exactly, between the link and the host; only the
// reorderings are no longer a known answer (a dropped message changes what counts as
// reordered), so they are logged.
func TestLabKnownAnswers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("lab: needs Linux, not %s", runtime.GOOS)
	}
	const count = 3000
	tests := []struct {
		name string
		spec string
		// check compares UDP's measurements with the link's data counts and the
		// host's counted drops.
		check func(t *testing.T, m report.Metrics, in report.DataCounts, host uint64)
	}{
		{"loss", "loss=5%", func(t *testing.T, m report.Metrics, in report.DataCounts, host uint64) {
			// (A datagram the link corrupted is dropped at the socket: among host's.)
			if in.Dropped == 0 || m.LostMsgs != in.Dropped+in.QueueDropped+host {
				t.Errorf("udp lost %d, link dropped %d (queue %d), host dropped %d: want lost = link + host, link > 0",
					m.LostMsgs, in.Dropped, in.QueueDropped, host)
			}
		}},
		{"duplicate", "dup=3%", func(t *testing.T, m report.Metrics, in report.DataCounts, host uint64) {
			// A host drop loses a message, or one copy of a duplicated one.
			if in.Duplicated == 0 || m.DupMsgs > in.Duplicated || m.LostMsgs+in.Duplicated-m.DupMsgs != host {
				t.Errorf("udp duplicates %d lost %d, link duplicated %d, host dropped %d: want duplicates = link's and none lost, less what the host dropped",
					m.DupMsgs, m.LostMsgs, in.Duplicated, host)
			}
		}},
		{"reorder", "reorder=3%,reorderby=2ms", func(t *testing.T, m report.Metrics, in report.DataCounts, host uint64) {
			if in.Reordered == 0 || m.LostMsgs != host || (host == 0 && m.ReorderedMsgs != in.Reordered) {
				t.Errorf("udp reordered %d lost %d, link reordered %d, host dropped %d: want reordered = link's > 0, lost = host's drops",
					m.ReorderedMsgs, m.LostMsgs, in.Reordered, host)
			}
		}},
		{"corrupt", "corrupt=2%", func(t *testing.T, m report.Metrics, in report.DataCounts, host uint64) {
			// The receiving socket drops a corrupted datagram (its checksum fails):
			// the host's drops are the corrupted ones and any overflow.
			if in.Corrupted == 0 || m.LostMsgs != host || host < in.Corrupted || m.CorruptMsgs != 0 {
				t.Errorf("udp lost %d corrupt %d, link corrupted %d, host dropped %d: want lost = host's drops >= corrupted > 0, nothing corrupt delivered",
					m.LostMsgs, m.CorruptMsgs, in.Corrupted, host)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := lab.ParseImpair("--impair", tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			// Paced, into the lab's receive buffer for datagrams (labRecvBuffer, by
			// default): the UDP receiver does not overflow unless the host starves it. TCP repairs a
			// loss at the tail after a retransmission timeout or two: the drain is
			// a hang guard, which a complete flow ends at once.
			p := Plan{Experiments: []string{report.ExpStream}, Sizes: []int{1024}, Count: count, RateBps: 20e6,
				Seed: 7, Warmup: NoWarmup, Drain: patience, Lab: &LabConfig{Up: im, Down: im}}
			rep, err := Run(context.Background(), p)
			if errors.Is(err, os.ErrPermission) {
				t.Skipf("lab: needs CAP_NET_ADMIN: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Env.Link.Kind != "lab" || rep.Env.Link.Impair["up"] == "" {
				t.Errorf("env.link %+v: want kind lab with the impairment", rep.Env.Link)
			}
			// The lab (closed now) added a processor for each of its two readers.
			if want := runtime.GOMAXPROCS(0) + 2; rep.Env.GOMAXPROCS != want {
				t.Errorf("env.gomaxprocs %d, want %d (the program's and the lab readers' 2)", rep.Env.GOMAXPROCS, want)
			}
			// Without --rcvbuf, UDP's sockets asked for labRecvBuffer (the kernel
			// grants twice a request) and TCP's kept the kernel's autotuning.
			if u := rep.Env.Sockets["udp"].RecvBuffer; u < labRecvBuffer {
				t.Errorf("env.sockets.udp.recv_buffer %d, want at least %d (labRecvBuffer)", u, labRecvBuffer)
			}
			if p.Net.RecvBuffer != 0 || rep.Config.RecvBuffer != 0 {
				t.Errorf("config.recv_buffer %d: want 0, --rcvbuf was not given", rep.Config.RecvBuffer)
			}
			for _, r := range rep.Results {
				if r.Error != "" {
					t.Fatalf("%s: %s", r.Transport, r.Error)
				}
				m := r.Metrics
				if r.Injected == nil {
					t.Fatalf("%s: no injected counts", r.Transport)
				}
				t.Logf("%s: sent %d recv %d lost %d dup %d reord %d corrupt %d retrans %v drops socket %v sender %d network %v; warnings %q; link up %+v",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.CorruptMsgs, deref(m.Retransmits),
					deref(m.DropsSocket), m.DropsSender, deref(m.DropsNetwork), r.Warnings, r.Injected.Up)
				switch r.Transport {
				case "tcp":
					if m.SentMsgs != count || m.RecvMsgs != count || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.CorruptMsgs != 0 {
						t.Errorf("tcp: sent %d recv %d lost %d dup %d reordered %d corrupt %d: want all %d delivered once, in order, intact",
							m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.CorruptMsgs, count)
					}
					if tc.name == "loss" && (m.Retransmits == nil || *m.Retransmits == 0) {
						t.Errorf("tcp under loss: retransmits %v, want > 0", deref(m.Retransmits))
					}
				case "udp":
					if m.SentMsgs != count || r.Injected.Up.Data.Packets != count {
						t.Errorf("udp: sent %d, link saw %d data packets: want %d", m.SentMsgs, r.Injected.Up.Data.Packets, count)
					}
					host := m.DropsSender
					if m.DropsSocket != nil {
						host += *m.DropsSocket
					}
					if host > r.Injected.Up.Data.Corrupted {
						t.Logf("udp: the host dropped %d (socket %v, sender %d; corrupted by the link %d): reorderings are not a known answer",
							host, deref(m.DropsSocket), m.DropsSender, r.Injected.Up.Data.Corrupted)
					}
					tc.check(t, m, r.Injected.Up.Data, host)
				}
			}
		})
	}
}

// TestLabDelay: an emulated delay shows in the measured RTT, once each way. (The
// precise figure, which held within 2% + 2 ms on an idle host, is logged.)
func TestLabDelay(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("lab: needs Linux, not %s", runtime.GOOS)
	}
	im := lab.Impair{Delay: 10 * time.Millisecond}
	p := Plan{Experiments: []string{report.ExpPingPong}, Sizes: []int{64}, Count: 50, Warmup: NoWarmup, Timeout: patience, Lab: &LabConfig{Up: im, Down: im}}
	rep, err := Run(context.Background(), p)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("lab: needs CAP_NET_ADMIN: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		rtt := r.Metrics.RTT
		if rtt == nil || rtt.P50 == nil {
			t.Fatalf("%s: rtt %+v", r.Transport, rtt)
		}
		// 20 ms of emulated delay: never less; a busy host adds its scheduling on top,
		// so the upper bound only says the delay was applied once each way, not twice.
		p50 := time.Duration(*rtt.P50)
		t.Logf("%s: RTT p50 %v (%+v over the 20 ms emulated), max %v", r.Transport, p50, p50-20*time.Millisecond, time.Duration(rtt.Max))
		if p50 < 20*time.Millisecond || p50 >= 40*time.Millisecond {
			t.Errorf("%s: RTT p50 %v, want the 20 ms delay: at least 20 ms, under twice that", r.Transport, p50)
		}
	}
}

// runLab runs p across an emulated link impaired both ways by spec, skipping the
// test where the lab cannot be built (no Linux, no privileges), and fails on any
// cell error.
func runLab(t *testing.T, spec string, p Plan) *report.Report {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("lab: needs Linux, not %s", runtime.GOOS)
	}
	im, err := lab.ParseImpair("--impair", spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Lab = &LabConfig{Up: im, Down: im}
	rep, err := Run(context.Background(), p)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("lab: needs CAP_NET_ADMIN: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Fatalf("%s %s: %s", r.Experiment, r.Transport, r.Error)
		}
	}
	return rep
}

// checkRow fails unless rep has the property row id with the given evidence keys.
func checkRow(t *testing.T, rep *report.Report, id string, evidence ...string) {
	t.Helper()
	for _, pr := range rep.Properties {
		if pr.ID != id {
			continue
		}
		t.Logf("row: tcp %q; udp %q", pr.TCP, pr.UDP)
		for _, k := range evidence {
			if pr.Evidence[k] == nil {
				t.Errorf("%s evidence %v: no %q", id, pr.Evidence, k)
			}
		}
		return
	}
	t.Errorf("no %s row in %v", id, rep.Properties)
}
