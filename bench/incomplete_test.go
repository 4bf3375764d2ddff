package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// TestRunInterrupted: a run cancelled after its first cell returns the partial
// report: that cell's figures, no later cell, and the report marked incomplete,
// naming the cell it stopped before.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := Plan{Experiments: []string{report.ExpStream}, Transports: []string{"tcp", "udp"}, Sizes: []int{64}, Count: 200, RateBps: 20e6, UDPIO: []string{report.IOBatched},
		Warmup: NoWarmup, Drain: patience, // the first cell's 200 TCP messages all arrive: a complete flow ends the drain
		Progress: func(ev ProgressEvent) {
			if ev.Done && ev.Index == 1 {
				cancel()
			}
		}}
	rep, err := Run(ctx, p)
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want the partial report and context.Canceled", rep, err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Metrics.RecvMsgs != 200 || rep.Results[0].Error != "" {
		t.Errorf("%d results (%+v); want the first cell only, with its 200 messages", len(rep.Results), rep.Results)
	}
	const want = "interrupted (context canceled) before stream over udp (size 64): 1 of 2 cells did not run"
	if rep.Incomplete != want || !slices.Contains(rep.Warnings, "incomplete: "+want) {
		t.Errorf("incomplete %q, warnings %q; want %q", rep.Incomplete, rep.Warnings, want)
	}
	if got := notRunJSON(t, rep); !slices.Equal(got, []string{"stream udp 64"}) {
		t.Errorf("not_run = %q, want [stream udp 64]", got)
	}
}

// TestRunInterruptedDuringCell is issue 12's "an interrupted cell is not a
// measurement": a run of four cells (pingpong then stream, TCP then UDP) is
// cancelled while the stream over TCP sends. The two pingpong cells are measured;
// the stream over TCP has an error saying it was interrupted and no figures, and
// every renderer says "not measured" and why for it instead of showing zeros; the
// stream over UDP never started, and the report names it. The intro names only the
// experiment that ran; Incomplete names the cell running then and counts the rest.
func TestRunInterruptedDuringCell(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}) // closed by Progress when the third cell starts
	p := Plan{Experiments: []string{report.ExpPingPong, report.ExpStream}, Transports: []string{"tcp", "udp"}, Sizes: []int{64}, UDPIO: []string{report.IOBatched},
		// 200 messages of 512 bits at 8 kbit/s take 12.8 s: the stream is still
		// sending when the test cancels it. A pingpong cell is 200 round trips.
		Count: 200, RateBps: 8e3, Warmup: NoWarmup, Timeout: patience,
		Progress: func(ev ProgressEvent) {
			if ev.Index == 3 && !ev.Done {
				close(started)
			}
		}}
	type ran struct {
		rep *report.Report
		err error
	}
	out := make(chan ran, 1)
	done := make(chan error, 1) // for waitfor.InCall: Run returned before the stream was seen sending
	go func() {
		rep, err := Run(ctx, p)
		out <- ran{rep, err}
		done <- err
	}()
	select {
	case <-started:
	case r := <-out:
		t.Fatalf("Run returned before its third cell started: %v", r.err)
	}
	if err := waitfor.InCall("bench.(*streamTx).send(", false, done, patience); err != nil {
		t.Fatalf("the stream over tcp is not sending: %v", err)
	}
	cancel()
	r := <-out
	rep, err := r.rep, r.err
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want the partial report and context.Canceled", rep, err)
	}

	// The model: two measured cells, one interrupted, one not run.
	var got []string
	for _, res := range rep.Results {
		got = append(got, res.Experiment+" "+res.Transport+" error="+strings.Repeat("yes", min(len(res.Error), 1)))
	}
	if want := []string{"pingpong tcp error=", "pingpong udp error=", "stream tcp error=yes"}; !slices.Equal(got, want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	st := rep.Results[2]
	why := regexp.MustCompile(`^stream over tcp \(size 64\): interrupted \(context canceled\) after [0-9.]+ [num]?s, before the cell finished$`)
	if !why.MatchString(st.Error) {
		t.Errorf("stream tcp error %q, want it to match %s", st.Error, why)
	}
	if st.Metrics != (report.Metrics{}) {
		t.Errorf("stream tcp metrics %+v, want none", st.Metrics)
	}
	const incomplete = "interrupted (context canceled) during stream over tcp (size 64), which has no figures: 1 of 4 cells did not run"
	if rep.Incomplete != incomplete {
		t.Errorf("incomplete %q, want %q", rep.Incomplete, incomplete)
	}
	var doc struct {
		Results []struct {
			Interrupted *bool `json:"interrupted"`
		} `json:"results"`
	}
	decodeJSON(t, rep, &doc)
	for i, res := range doc.Results {
		if wantIntr := i == 2; (res.Interrupted != nil && *res.Interrupted) != wantIntr {
			t.Errorf("results[%d].interrupted = %v, want %v", i, res.Interrupted, wantIntr)
		}
	}
	if got := notRunJSON(t, rep); !slices.Equal(got, []string{"stream udp 64"}) {
		t.Errorf("not_run = %q, want [stream udp 64]", got)
	}
	// Properties use measured cells only: without the interrupted cell they are the same.
	measured := *rep
	measured.Results = rep.Results[:2]
	if got, want := derivedProperties(rep), derivedProperties(&measured); !reflect.DeepEqual(got, want) {
		t.Errorf("properties with the interrupted cell %+v, without %+v; want the same", got, want)
	}

	// Every renderer, and the report read back from its JSON (tcpvsudp report).
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := report.ReadReport(&js)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct {
		name string
		rep  *report.Report
	}{{"run", rep}, {"report.json", back}} {
		text, md := renderBoth(t, src.rep)
		for _, tc := range []struct {
			name, out, section string
			want               []string
		}{
			{"text", text, "\nThroughput (stream)\n", []string{
				"\nincomplete: " + incomplete + "\n",
				"\nnot run: stream over udp (size 64 B, rate 8.00 kbit/s)\n",
				"\n| 64 B | not measured |\n",
				"\nnot measured: tcp, size 64 B, rate 8.00 kbit/s: interrupted (context canceled) after ",
			}},
			{"markdown", md, "\n## Throughput (stream)\n", []string{
				"\nRan `pingpong` over TCP and UDP on host ",
				" No figures for `stream`: every cell of it failed or was interrupted (see its section). **Incomplete**: " + incomplete +
					". Not run: stream over udp (size 64 B, rate 8.00 kbit/s). Each cell sent 200 msgs per stream",
				"\n| 64 B | not measured |\n",
				"\nNot measured:\n\n- tcp, size 64 B, rate 8.00 kbit/s: interrupted (context canceled) after ",
			}},
		} {
			for _, w := range tc.want {
				if !strings.Contains(tc.out, w) {
					t.Errorf("%s, %s: no %q in:\n%s", src.name, tc.name, w, tc.out)
				}
			}
			i := strings.Index(tc.out, tc.section)
			if i < 0 {
				t.Errorf("%s, %s: no stream section:\n%s", src.name, tc.name, tc.out)
				continue
			}
			sec := tc.out[i:]
			if j := strings.Index(sec[1:], "\n## "); tc.name == "markdown" && j >= 0 {
				sec = sec[:j+1]
			}
			if strings.Contains(sec, "bit/s |") || strings.Contains(sec, "| 0 ") || strings.Contains(sec, " 0 |") {
				t.Errorf("%s, %s: the stream section shows a figure of the interrupted cell:\n%s", src.name, tc.name, sec)
			}
			if n := strings.Count(strings.ToLower(tc.out), "not measured"); n != 3 {
				t.Errorf("%s, %s: %d times \"not measured\", want 3 (two tables, one reason):\n%s", src.name, tc.name, n, tc.out)
			}
		}
	}
}

// TestRunInterruptedInLastCell: a run interrupted in its last cell is incomplete too,
// and returns the context's error: nothing is left to run, but that cell has no figures.
func TestRunInterruptedInLastCell(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := Plan{Experiments: []string{report.ExpStream}, Transports: []string{"tcp"}, Sizes: []int{64},
		Count: 200, RateBps: 8e3, Warmup: NoWarmup} // 12.8 s: still sending when cancelled
	done := make(chan error, 1)
	out := make(chan *report.Report, 1)
	go func() {
		rep, err := Run(ctx, p)
		out <- rep
		done <- err
	}()
	if err := waitfor.InCall("bench.(*streamTx).send(", false, done, patience); err != nil {
		t.Fatalf("the stream over tcp is not sending: %v", err)
	}
	cancel()
	rep, err := <-out, <-done
	const want = "interrupted (context canceled) during stream over tcp (size 64), the last, which has no figures"
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want the partial report and context.Canceled", rep, err)
	}
	if rep.Incomplete != want || len(rep.Results) != 1 || rep.Results[0].Error == "" {
		t.Errorf("incomplete %q, results %+v; want %q and the cell with its error", rep.Incomplete, rep.Results, want)
	}
}

// notRunJSON lists the report's not_run cells, as the JSON document has them, as
// "experiment transport size".
func notRunJSON(t *testing.T, rep *report.Report) []string {
	t.Helper()
	var doc struct {
		NotRun []struct {
			Experiment, Transport string
			Params                struct{ Size int }
		} `json:"not_run"`
	}
	decodeJSON(t, rep, &doc)
	var out []string
	for _, c := range doc.NotRun {
		out = append(out, c.Experiment+" "+c.Transport+" "+strconv.Itoa(c.Params.Size))
	}
	return out
}

// decodeJSON decodes rep's JSON document into v.
func decodeJSON(t *testing.T, rep *report.Report, v any) {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		t.Fatal(err)
	}
}

// TestIncompleteText: what Report.Incomplete says, for each way a run stops early.
func TestIncompleteText(t *testing.T) {
	cause := errors.New("interrupt signal received")
	lost := errors.New("remote: server lost: EOF")
	cell := "stream over tcp (size 64)"
	tests := []struct {
		name, got, want string
	}{
		{"during a cell", stopped{cell: cell, run: 1, index: 3}.interrupted(cause, 1, 3, 4),
			"interrupted (interrupt signal received) during stream over tcp (size 64), which has no figures: 1 of 4 cells did not run"},
		{"during the last cell", stopped{cell: cell, run: 1, index: 4}.interrupted(cause, 1, 4, 4),
			"interrupted (interrupt signal received) during stream over tcp (size 64), the last, which has no figures"},
		{"between cells", stopped{cell: cell, run: 1, before: true}.interrupted(cause, 1, 2, 4),
			"interrupted (interrupt signal received) before stream over tcp (size 64): 2 of 4 cells did not run"},
		{"during a repeat", stopped{cell: cell, run: 2, index: 7}.interrupted(cause, 3, 7, 12),
			"interrupted (interrupt signal received) during run 2 of 3 of stream over tcp (size 64), that run has no figures: 5 of 12 cell runs did not run"},
		{"server lost", stopped{cell: cell, run: 1, index: 2}.lost(lost, 1, 4),
			"the remote server was lost (remote: server lost: EOF) during stream over tcp (size 64): it and the 2 cells after it have no figures"},
		{"server lost after the last cell", stopped{}.lost(lost, 1, 4),
			"the remote server was lost (remote: server lost: EOF) after the last cell: every cell has its figures"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %q\nwant %q", tc.got, tc.want)
			}
		})
	}
}
