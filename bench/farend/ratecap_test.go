package farend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestFarRateCap: a server whose --max-rate holds its sending back says so in the
// cell's warnings. Closed-loop pingpong of 1024 B on loopback answers far faster
// than 2 Mbit/s (about 250 replies/s), so the cap holds it: the RTT shows the cap,
// not the path. The replies cannot beat the cap (exact, whatever the load); the
// time the cap held them is logged against their time on the wire, and checked only
// to lie within the cell (a loaded machine's slower round trips leave the pacer less
// to hold; its late timers add to it). A reverse stream paced below the cap by the
// client is never held.
func TestFarRateCap(t *testing.T) {
	var capBps = 2e6
	far, _ := dialServer(t, remote.Limits{MaxRateBps: uint64(capBps)})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpPingPong}, Transports: []string{"tcp", "udp"},
		Sizes: []int{1024}, Duration: 300 * time.Millisecond, Warmup: bench.NoWarmup, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		m := r.Metrics
		rate := m.RecvMsgs * 1024 * 8
		t.Logf("pingpong %s under a %.0f bit/s cap: %d replies in 300 ms (%d bit/s of replies), warnings %q", r.Transport, capBps, m.RecvMsgs, rate*10/3, r.Warnings)
		if r.Error != "" {
			t.Errorf("pingpong %s: %s", r.Transport, r.Error)
		}
		if !slicesContain(r.Warnings, "--max-rate (2.00 Mbit/s) held its sending back") {
			t.Errorf("pingpong %s: warnings %q, want the server's cap named", r.Transport, r.Warnings)
		}
		// Each reply waited for the pacer about its own time on the wire at the cap,
		// less the client's round trip (microseconds on an idle machine): the held
		// time the warning gives is that, summed over the replies. One reply at a
		// time, so the waits add up to no more than the cell's time, and the warning
		// needs 1 ms of them.
		over := map[string]int{"tcp": 4, "udp": 17}[r.Transport] // frame length, token prefix
		each := time.Duration(float64(1024+over) * 8 / capBps * float64(time.Second))
		held := heldIn(r.Warnings)
		cell := time.Duration(m.SendIntervalS*float64(time.Second)) + each
		t.Logf("pingpong %s: the cap held sending %v, %.2f × the %d replies' %v each on the wire at the cap", r.Transport, held,
			float64(held)/float64(time.Duration(m.RecvMsgs)*each), m.RecvMsgs, each)
		if held < time.Millisecond || held > cell {
			t.Errorf("pingpong %s: the cap held sending %v; want 1ms..%v (the cell's time)", r.Transport, held, cell)
		}
		// The replies cannot beat the cap: at most its rate, plus the pacer's 2 ms burst.
		if max := uint64(capBps*0.3/8/1024.0 + 2.5); m.RecvMsgs > max {
			t.Errorf("pingpong %s: %d replies, want at most %d under the cap", r.Transport, m.RecvMsgs, max)
		}
	}
	rep, err = bench.Run(context.Background(), bench.Plan{Far: far, Reverse: true, Experiments: []string{report.ExpStream}, Transports: []string{"tcp", "udp"},
		Sizes: []int{1024}, RateBps: capBps / 2, Count: 30, Warmup: bench.NoWarmup, Drain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Error != "" || slicesContain(r.Warnings, "--max-rate") || r.Metrics.RecvMsgs != 30 {
			t.Errorf("reverse stream %s paced at half the cap: error %q, recv %d, warnings %q; want 30 received and no cap warning",
				r.Transport, r.Error, r.Metrics.RecvMsgs, r.Warnings)
		}
	}
}

func slicesContain(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// heldIn reads the held time from a cap warning ("held its sending back for 299.4ms,"); 0 if none.
func heldIn(warns []string) time.Duration {
	for _, w := range warns {
		if _, rest, ok := strings.Cut(w, "held its sending back for "); ok {
			if v, _, ok := strings.Cut(rest, ","); ok {
				d, _ := time.ParseDuration(v)
				return d
			}
		}
	}
	return 0
}
