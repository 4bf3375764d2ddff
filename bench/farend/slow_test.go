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

// TestFarSlowReceiver: slow-receiver through a real server session on loopback,
// its receiver at the server, gives the one-host answers. With a reader at 20
// Mbit/s, TCP's sender is held to that pace and delivers every byte; UDP's sender
// outruns it, the server socket's drop counter crosses over and the drops account
// for every missing message. The server granted the small receive buffer, this host
// the small send buffer, and the time line joins both hosts' counts. The rates are
// the machine's: logged, checked within bounds a loaded machine holds
// (BenchmarkFarSlowReceiver reports them).
func TestFarSlowReceiver(t *testing.T) {
	const reader = 20e6
	far, _ := dialServer(t, remote.Limits{})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpSlowReceiver}, Transports: []string{"tcp", "udp"},
		ReaderBps: reader, Duration: 500 * time.Millisecond, Drain: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want slow-receiver over tcp and udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		m, obs := r.Metrics, r.Observed
		t.Logf("%s: sent %d recv %d lost %d send %.4g bit/s goodput %.4g bit/s, observed %v, warnings %q, %d samples",
			r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.SendRateBps, m.GoodputBps, obs, r.Warnings, len(r.Series))
		if r.Error != "" {
			t.Errorf("%s: %s", r.Transport, r.Error)
			continue
		}
		checkSlowReceiver(t, r, reader)
	}
}

// checkSlowReceiver checks a slow-receiver result whose receiver was at a far end
// against the known answers (bench's TestSlowReceiver's on one host, with the
// bounds of a far cell).
func checkSlowReceiver(t testing.TB, r report.Result, reader float64) {
	t.Helper()
	m, obs := r.Metrics, r.Observed
	what := "slow-receiver " + r.Transport
	if m.SentMsgs == 0 || m.RecvMsgs == 0 || m.ServerSockets != 1 || r.Params.ReaderBps != reader {
		t.Errorf("%s: sent %d, received %d by %d server sockets at reader %g bit/s: want a stream through 1 far socket, read at %g bit/s",
			what, m.SentMsgs, m.RecvMsgs, m.ServerSockets, r.Params.ReaderBps, reader)
		return
	}
	// Linux doubles a request: the grants are at least the 64 KiB asked for.
	if n, _ := num(obs["recv_buffer_bytes"]); n < 64<<10 {
		t.Errorf("%s: recv_buffer_bytes %v, want the server's grant >= 65536", what, obs["recv_buffer_bytes"])
	}
	if n, _ := num(obs["send_buffer_bytes"]); n < 64<<10 {
		t.Errorf("%s: send_buffer_bytes %v, want this host's grant >= 65536", what, obs["send_buffer_bytes"])
	}
	aligned := false
	for _, w := range r.Warnings {
		aligned = aligned || strings.Contains(w, "aligned at the first data message")
	}
	if !aligned {
		t.Errorf("%s: warnings %q, want the clocks' alignment said", what, r.Warnings)
	}
	s := r.Series
	if len(s) < 5 {
		t.Errorf("%s: series of %d samples, want a time line", what, len(s))
	} else {
		for i := 1; i < len(s); i++ {
			if s[i].TS < s[i-1].TS || s[i].SentMsgs < s[i-1].SentMsgs || s[i].RecvMsgs < s[i-1].RecvMsgs || s[i].RecvMsgs > s[i].SentMsgs {
				t.Errorf("%s: series[%d:%d] = %+v: want time and both counts growing, delivered <= sent", what, i-1, i+1, s[i-1:i+1])
				break
			}
		}
		if last := s[len(s)-1]; last.SentMsgs != m.SentMsgs || last.RecvMsgs != m.RecvMsgs {
			t.Errorf("%s: series ends %+v, want the cell's %d sent, %d delivered", what, last, m.SentMsgs, m.RecvMsgs)
		}
	}
	steady, _ := num(obs["send_rate_steady_bps"])
	t.Logf("%s: steady send rate %.3f × the reader's, goodput %.3f ×", what, steady/reader, m.GoodputBps/reader)
	switch r.Transport {
	case "tcp":
		if m.LostMsgs != 0 || m.RecvBytes != m.SentBytes || obs["bytes_delivered_equal_sent"] != true {
			t.Errorf("%s: lost %d, received %d of %d bytes: want everything", what, m.LostMsgs, m.RecvBytes, m.SentBytes)
		}
		// Held to the reader: once the small buffers are full, the sender runs at
		// the far reader's pace (within 25% on an idle machine). A reader that fell
		// behind catches up in a burst, so the bound is wide both ways.
		if steady < 0.25*reader || steady > 2*reader {
			t.Errorf("%s: steady send rate %.4g bit/s, want the reader's %.4g (×0.25..×2)", what, steady, reader)
		}
		// TCP_INFO crossed the pacing wrapper: the far receive window held the sender.
		if n, _ := num(obs["rwnd_limited_ns"]); n <= 0 {
			t.Errorf("%s: rwnd_limited_ns %v, want > 0: the receive window held the sender", what, obs["rwnd_limited_ns"])
		}
	case "udp":
		// Far above the reader on an idle machine (×2 at least); above it on any.
		if steady <= reader || m.LostMsgs == 0 {
			t.Errorf("%s: steady send rate %.4g bit/s, lost %d: want the sender above the reader's %.4g, and losing", what, steady, m.LostMsgs, reader)
		}
		if obs["drops_account_for_missing"] != true || m.DropsSocket == nil || 2**m.DropsSocket < m.LostMsgs {
			t.Errorf("%s: observed %v, socket drops %v of %d missing: want the drops to account for the missing, most at the far socket", what, obs, m.DropsSocket, m.LostMsgs)
		}
	}
	// The reader's pace (-25%, +10% on an idle machine); a loaded one delays reads
	// and then catches up, which shifts the receive span either way.
	if m.GoodputBps < 0.25*reader || m.GoodputBps > 2*reader {
		t.Errorf("%s: goodput %.4g bit/s, want the reader's pace %.4g (×0.25..×2)", what, m.GoodputBps, reader)
	}
}

// num reads a number from an observation, as Go or as JSON left it.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// TestRunnerCheckSlow: a slow receiver's parameters are checked against their
// bounds, each error naming its field; a test named after slow-receiver is refused,
// naming the stream it runs as.
func TestRunnerCheckSlow(t *testing.T) {
	req := remote.TestRequest{Experiment: "bench.stream", Transport: "udp", Size: 1024, Duration: 3 * time.Second, Streams: 1, Direction: remote.Forward}
	const run = `"run":"00000000000000ab","drain_ms":1000`
	for _, tc := range []struct {
		name, params string
		dir          remote.Direction
		want         string // "" = accepted
	}{
		{"slow receiver", `{` + run + `,"reader_bps":20000000,"rcvbuf":65536,"series_ms":50}`, remote.Forward, ""},
		{"pace only", `{` + run + `,"reader_bps":8000}`, remote.Forward, ""},
		{"pace too slow", `{` + run + `,"reader_bps":7999}`, remote.Forward, "params.reader_bps: must be 0 or 8000..1000000000000 bits/s, got 7999"},
		{"buffer too large", `{` + run + `,"rcvbuf":67108865}`, remote.Forward, "params.rcvbuf: must be 0..67108864 bytes, got 67108865"},
		{"buffer negative", `{` + run + `,"rcvbuf":-1}`, remote.Forward, "params.rcvbuf"},
		{"step too short", `{` + run + `,"series_ms":9}`, remote.Forward, "params.series_ms: must be 0 or 10..30000 ms, got 9"},
		// (3 s + 1 s drain) / 10 ms = 400 samples: fine; at 60 s, 6100: too many.
		{"step fine", `{` + run + `,"series_ms":10}`, remote.Forward, ""},
		{"reverse", `{` + run + `,"warmup_ms":10,"send_ms":100,"reader_bps":20000000}`, remote.Reverse, "params: reader_bps, rcvbuf and series_ms belong to a forward stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.Params, r.Direction = []byte(tc.params), tc.dir
			err := Runner{}.Check(r)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check(params %s, %s) = %v, want %q", tc.params, tc.dir, err, tc.want)
			}
		})
	}
	long := req
	long.Duration, long.Params = 60*time.Second, []byte(`{`+run+`,"series_ms":10}`)
	if err := (Runner{}).Check(long); err == nil || !strings.Contains(err.Error(), "params.series_ms: 10 ms makes 6100 samples") || !strings.Contains(err.Error(), "want at least 31 ms") {
		t.Errorf("Check(60 s, series every 10 ms) = %v, want params.series_ms refused: 6100 samples, at least 31 ms", err)
	}
	named := req
	named.Experiment = "bench." + report.ExpSlowReceiver
	if err := (Runner{}).Check(named); err == nil || !strings.Contains(err.Error(), "runs as bench.stream") {
		t.Errorf("Check(bench.slow-receiver) = %v, want it refused naming bench.stream", err)
	}
}

// BenchmarkFarSlowReceiver reports what TestFarSlowReceiver checks only within wide
// bounds: the sender's steady rate and the goodput, each over the far reader's pace
// (TCP's both about 1; UDP's sender far above it), and the fraction lost.
func BenchmarkFarSlowReceiver(b *testing.B) {
	const reader = 20e6
	far, _ := dialServer(b, remote.Limits{})
	for _, transport := range []string{"tcp", "udp"} {
		b.Run("transport="+transport, func(b *testing.B) {
			var steady, goodput, lost, sent float64
			for b.Loop() {
				rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpSlowReceiver}, Transports: []string{transport},
					ReaderBps: reader, Duration: 500 * time.Millisecond, Drain: 500 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				r := rep.Results[0]
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				s, _ := num(r.Observed["send_rate_steady_bps"])
				steady += s
				goodput += r.Metrics.GoodputBps
				lost += float64(r.Metrics.LostMsgs)
				sent += float64(r.Metrics.SentMsgs)
			}
			n := float64(b.N)
			b.ReportMetric(steady/n/reader, "steady/reader")
			b.ReportMetric(goodput/n/reader, "goodput/reader")
			b.ReportMetric(lost/max(sent, 1), "lost/msg")
		})
	}
}
