package bench

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestWithDefaultsTwice: defaults applied any number of times give the same plan, and
// a warm-up or drain asked to be none stays none for the runner (PITFALLS 21).
func TestWithDefaultsTwice(t *testing.T) {
	tests := []struct {
		name          string
		p             Plan
		warmup, drain time.Duration // what the runner runs
	}{
		{name: "unset", p: Plan{}, warmup: 200 * time.Millisecond, drain: time.Second},
		{name: "none", p: Plan{Warmup: NoWarmup, Drain: -1}, warmup: 0, drain: 0},
		{name: "set", p: Plan{Warmup: time.Millisecond, Drain: 2 * time.Millisecond}, warmup: time.Millisecond, drain: 2 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			once := tc.p.WithDefaults()
			twice := once.WithDefaults()
			if once.Warmup != twice.Warmup || once.Drain != twice.Drain {
				t.Errorf("once: warmup %v drain %v; twice: %v, %v", once.Warmup, once.Drain, twice.Warmup, twice.Drain)
			}
			if twice.warmup() != tc.warmup || twice.drain() != tc.drain {
				t.Errorf("the runner runs warmup %v, drain %v; want %v, %v", twice.warmup(), twice.drain(), tc.warmup, tc.drain)
			}
		})
	}
}

// TestUDPIOCells: UDP streams run once per I/O mode asked for, each its own cell,
// and nothing else does; an unknown mode is refused naming the flag.
func TestUDPIOCells(t *testing.T) {
	p := Plan{Transports: []string{"tcp", "udp"}, Experiments: []string{report.ExpStream, report.ExpPingPong}, Sizes: []int{64, 1024}}.WithDefaults()
	var got []string
	for _, c := range p.cells() {
		got = append(got, c.String())
	}
	want := []string{
		"stream over tcp (size 64)", "stream over udp (size 64)", "stream over udp (size 64, textbook I/O)",
		"stream over tcp (size 1024)", "stream over udp (size 1024)", "stream over udp (size 1024, textbook I/O)",
		"pingpong over tcp (size 64)", "pingpong over udp (size 64)", "pingpong over tcp (size 1024)", "pingpong over udp (size 1024)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("cells:\n got %q\nwant %q", got, want)
	}
	p.UDPIO = []string{report.IOTextbook}
	if cs := p.cells(); len(cs) != 8 || cs[1].params.IO != report.IOTextbook {
		t.Errorf("--udp-io textbook: %v", cs)
	}
	p.UDPIO = []string{"fast"}
	if err := p.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--udp-io: ") {
		t.Errorf("Validate of an unknown mode: %v, want an error naming --udp-io", err)
	}
}

// TestTextbookSendCalls: a textbook UDP stream cell makes one send call per
// datagram, and a batched one carries many per call; both deliver the same count.
func TestTextbookSendCalls(t *testing.T) {
	const count = 2000
	// Unpaced: a paced sender hands over what is due each time it wakes, so how many
	// messages a call carries depends on the scheduler (on a quiet host, about one).
	// Unpaced, every call carries --batch messages; 2000 of 512 B fit the 4 MiB buffer.
	p := Plan{Transports: []string{"udp"}, Experiments: []string{report.ExpStream}, Sizes: []int{512}, Count: count,
		Warmup: NoWarmup, Net: transport.NetOptions{RecvBuffer: 4 << 20}}.WithDefaults()
	e := testEnv(t)
	e.batch = p.Batch
	cs := p.cells()
	if len(cs) != 2 {
		t.Fatalf("cells %v, want batched and textbook", cs)
	}
	for _, c := range cs {
		t.Run(cmp.Or(c.params.IO, report.IOBatched), func(t *testing.T) {
			o, err := runCell(context.Background(), e, p, c)
			if err != nil {
				t.Fatal(err)
			}
			calls, dgrams := o.observed["send_calls"], o.observed["sent_datagrams"]
			t.Logf("%d send calls for %d datagrams; sent %d, received %d", calls, dgrams, o.m.SentMsgs, o.m.RecvMsgs)
			if dgrams != uint64(count) || o.m.SentMsgs != count {
				t.Errorf("sent_datagrams %v, sent_msgs %d; want %d", dgrams, o.m.SentMsgs, count)
			}
			if c.params.IO == report.IOTextbook && calls != uint64(count) {
				t.Errorf("textbook: %v send calls, want one per datagram (%d)", calls, count)
			}
			if c.params.IO == "" && calls.(uint64) >= count/2 {
				t.Errorf("batched (--batch %d): %v send calls for %d datagrams, want far fewer", p.Batch, calls, count)
			}
		})
	}
}
