package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// TestRunInterruptedBySIGINT: Ctrl-C while a stream cell sends (issue 12, item 5).
// This process gets a real SIGINT, caught as main catches it (signal.NotifyContext),
// during the third of four cells: pingpong over TCP and UDP are measured, the stream
// over TCP shows as not measured, interrupted by the signal, in the terminal, the
// progress line, report.json and report.md (and its re-rendering), and the stream
// over UDP is named as not run. The command fails saying so.
func TestRunInterruptedBySIGINT(t *testing.T) {
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Skipf("interrupt: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt) // as main does
	defer stop()
	dir := t.TempDir()
	// 200 messages of 512 bits at 8 kbit/s take 12.8 s: the stream still sends when
	// the signal comes. A pingpong cell is 200 round trips.
	args := []string{"run", "-e", "pingpong,stream", "-t", "tcp,udp", "--sizes", "64", "--count", "200", "--rate", "8k", "--udp-io", "batched",
		"--warmup", "0", "--timeout", "10s", "--out", dir}
	var stdout, stderr bytes.Buffer // read only once run has returned
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	if err := waitfor.InCall("bench.(*streamTx).send(", false, done, time.Minute); err != nil {
		t.Fatalf("the stream over tcp is not sending: %v", err)
	}
	if err := self.Signal(os.Interrupt); err != nil {
		t.Skipf("interrupt: cannot signal this process: %v", err)
	}
	err = <-done

	const incomplete = "interrupted (interrupt signal received) during stream over tcp (size 64), which has no figures: 1 of 4 cells did not run"
	if want := "run stopped early: " + incomplete + "; the report holds what was measured"; err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Errorf("run = %v; want %q, wrapping context.Canceled\nstderr:\n%s", err, want, stderr.String())
	}
	why := `interrupted \(interrupt signal received\) after [0-9.]+ m?s, before the cell finished`
	for _, tc := range []struct {
		name, out string
		want      []string // regular expressions
	}{
		{"stdout", unwrapped(stdout.String()), []string{
			`(?m)^incomplete: ` + regexp.QuoteMeta(incomplete) + `$`,
			`(?m)^not run: stream over udp \(size 64 B, rate 8\.00 kbit/s\)$`,
			`(?m)^ 64 B +not measured$`, // the compact stream table's row
			`(?m)^not measured: tcp, size 64 B, rate 8\.00 kbit/s: ` + why + `$`,
		}},
		{"stderr", unwrapped(stderr.String()), []string{ // progress lines wrap at 100 columns
			`(?m)^\[1/4\] pingpong tcp size=64: RTT p50 `,
			`(?m)^\[3/4\] stream tcp size=64: not measured: stream over tcp \(size 64\): ` + why + `$`,
		}},
	} {
		for _, w := range tc.want {
			if !regexp.MustCompile(w).MatchString(tc.out) {
				t.Errorf("%s: no match for %s in:\n%s", tc.name, w, tc.out)
			}
		}
	}
	if regexp.MustCompile(`(?m)^ .*[0-9] [kMG]?bit/s`).MatchString(stdout.String()) { // a table row with a rate
		t.Errorf("stdout shows a rate figure; only pingpong was measured:\n%s", stdout.String())
	}

	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []struct {
			Experiment, Transport, Error string
			Interrupted                  bool
		}
		NotRun     []struct{ Experiment, Transport string } `json:"not_run"`
		Incomplete string
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range doc.Results {
		got = append(got, r.Experiment+" "+r.Transport+" "+map[bool]string{true: "interrupted", false: "measured"}[r.Interrupted])
	}
	for _, r := range doc.NotRun {
		got = append(got, r.Experiment+" "+r.Transport+" not run")
	}
	want := []string{"pingpong tcp measured", "pingpong udp measured", "stream tcp interrupted", "stream udp not run"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") || doc.Incomplete != incomplete {
		t.Errorf("report.json: cells %q, incomplete %q; want %q, %q", got, doc.Incomplete, want, incomplete)
	}

	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"\nRan `pingpong` over TCP and UDP on host ",
		" No figures for `stream`: every cell of it failed or was interrupted (see its section). **Incomplete**: " + incomplete +
			". Not run: stream over udp (size 64 B, rate 8.00 kbit/s). ",
		"\n| 64 B | not measured |\n",
		"\nNot measured:\n\n- tcp, size 64 B, rate 8.00 kbit/s: interrupted (interrupt signal received) after ",
	} {
		if !bytes.Contains(md, []byte(w)) {
			t.Errorf("report.md: no %q in:\n%s", w, md)
		}
	}
	// tcpvsudp report renders the same from the JSON.
	again := filepath.Join(dir, "again.md")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"report", filepath.Join(dir, "report.json"), "--markdown", again}, &out, &out); err != nil {
		t.Fatalf("report: %v", err)
	}
	if b, err := os.ReadFile(again); err != nil || !bytes.Equal(b, md) {
		t.Errorf("re-rendered markdown differs from the run's (err %v):\n%s", err, b)
	}
}

// cancelOnWrite is a progress writer that cancels a run once a line starting with
// prefix is written: from inside the run's progress callback, so the run stops at
// the next cell, deterministically.
type cancelOnWrite struct {
	mu     sync.Mutex // guards b
	b      bytes.Buffer
	prefix string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.HasPrefix(p, []byte(w.prefix)) {
		w.cancel()
	}
	return w.b.Write(p)
}

// TestLabSectionInterrupted: Ctrl-C in the default suite's emulated-link section
// keeps what the section measured, marks the report incomplete naming where it
// stopped, and makes the run fail, as an interruption anywhere else does.
func TestLabSectionInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := &report.Report{}
	p := bench.Plan{Quick: true, Duration: 500 * time.Millisecond}.WithDefaults()
	w := &cancelOnWrite{prefix: "[1/", cancel: cancel} // after the section's first cell
	addLabSection(ctx, rep, p, w)
	if rep.Lab == nil {
		if ctx.Err() == nil && len(rep.Warnings) == 1 && strings.Contains(rep.Warnings[0], "skipped") {
			t.Skipf("lab: %s", rep.Warnings[0]) // no cell ran: no privileges, say
		}
		t.Fatalf("no lab report, warnings %v", rep.Warnings)
	}
	n := len(rep.Lab.Results) + len(rep.Lab.NotRun)
	want := fmt.Sprintf("emulated-link section interrupted (context canceled) before stream over udp (size 1024): %d of %d cells did not run", n-1, n)
	if rep.Incomplete != want || len(rep.Lab.Results) != 1 || rep.Lab.Results[0].Error != "" {
		t.Errorf("incomplete %q, %d lab results; want %q and the first cell measured", rep.Incomplete, len(rep.Lab.Results), want)
	}
	var text bytes.Buffer
	if err := render.Text(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"\nincomplete: " + want + "\n", " Incomplete: interrupted (context canceled) before stream over udp (size 1024)",
		" Not run: stream over udp (size 1024 B, rate 20.0 Mbit/s), "} {
		if !strings.Contains(unwrapped(text.String()), w) {
			t.Errorf("no %q in:\n%s", w, text.String())
		}
	}
}
