package bench

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
)

// TestLabKnownAnswers runs seeded impairments across the emulated link and checks
// that what the transports measured is exactly what the link injected: UDP's losses,
// duplicates and reorderings one for one, and TCP delivering everything, in order,
// once, with nothing corrupt reaching the application.
func TestLabKnownAnswers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("lab: needs Linux, not %s", runtime.GOOS)
	}
	const count = 3000
	tests := []struct {
		name string
		spec string
		// check compares UDP's measurements with the link's data counts.
		check func(t *testing.T, m Metrics, in DataCounts)
	}{
		{"loss", "loss=5%", func(t *testing.T, m Metrics, in DataCounts) {
			if in.Dropped == 0 || m.LostMsgs != in.Dropped+in.QueueDropped+in.Corrupted {
				t.Errorf("udp lost %d, link dropped %d (queue %d, corrupted %d): want equal and > 0", m.LostMsgs, in.Dropped, in.QueueDropped, in.Corrupted)
			}
		}},
		{"duplicate", "dup=3%", func(t *testing.T, m Metrics, in DataCounts) {
			if in.Duplicated == 0 || m.DupMsgs != in.Duplicated || m.LostMsgs != 0 {
				t.Errorf("udp duplicates %d lost %d, link duplicated %d: want equal, > 0, none lost", m.DupMsgs, m.LostMsgs, in.Duplicated)
			}
		}},
		{"reorder", "reorder=3%,reorderby=2ms", func(t *testing.T, m Metrics, in DataCounts) {
			if in.Reordered == 0 || m.ReorderedMsgs != in.Reordered || m.LostMsgs != 0 {
				t.Errorf("udp reordered %d lost %d, link reordered %d: want equal, > 0, none lost", m.ReorderedMsgs, m.LostMsgs, in.Reordered)
			}
		}},
		{"corrupt", "corrupt=2%", func(t *testing.T, m Metrics, in DataCounts) {
			if in.Corrupted == 0 || m.LostMsgs != in.Corrupted || m.CorruptMsgs != 0 {
				t.Errorf("udp lost %d corrupt %d, link corrupted %d: want lost = corrupted > 0 and nothing corrupt delivered", m.LostMsgs, m.CorruptMsgs, in.Corrupted)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := lab.ParseImpair("--impair", tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			// Paced: the UDP receiver never overflows, so every loss is the link's.
			p := Plan{Experiments: []string{ExpStream}, Sizes: []int{1024}, Count: count, RateBps: 20e6,
				Seed: 7, Warmup: -1, Drain: 500 * time.Millisecond, Lab: &LabConfig{Up: im, Down: im}}
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
			for _, r := range rep.Results {
				if r.Error != "" {
					t.Fatalf("%s: %s", r.Transport, r.Error)
				}
				m := r.Metrics
				if r.Injected == nil {
					t.Fatalf("%s: no injected counts", r.Transport)
				}
				t.Logf("%s: sent %d recv %d lost %d dup %d reord %d corrupt %d retrans %v; link up %+v",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.CorruptMsgs, deref(m.Retransmits), r.Injected.Up)
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
					tc.check(t, m, r.Injected.Up.Data)
				}
			}
		})
	}
}

// TestLabDelay: an emulated delay shows in the measured RTT.
func TestLabDelay(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("lab: needs Linux, not %s", runtime.GOOS)
	}
	im := lab.Impair{Delay: 10 * time.Millisecond}
	p := Plan{Experiments: []string{ExpPingPong}, Sizes: []int{64}, Count: 50, Warmup: -1, Lab: &LabConfig{Up: im, Down: im}}
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
		// 20 ms of emulated delay, within 2% plus a loopback base of at most 2 ms.
		if p50 := time.Duration(*rtt.P50); p50 < 20*time.Millisecond || p50 > 20*time.Millisecond*102/100+2*time.Millisecond {
			t.Errorf("%s: RTT p50 %v, want 20 ms within 2%% + 2 ms", r.Transport, p50)
		}
	}
}

// runLab runs p across an emulated link impaired both ways by spec, skipping the
// test where the lab cannot be built (no Linux, no privileges), and fails on any
// cell error.
func runLab(t *testing.T, spec string, p Plan) *Report {
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
func checkRow(t *testing.T, rep *Report, id string, evidence ...string) {
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
