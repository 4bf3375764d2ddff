package bench

import (
	"strings"
	"testing"
	"time"
)

// TestStreamParamsWire: what a client's codec puts in a stream test, its params and
// the test's direction, paths, count and pacer rate, is what the far end's Parse
// reads back into the spec, in each direction; a bad direction or a slow receiver
// on a reverse stream is refused, naming the field.
func TestStreamParamsWire(t *testing.T) {
	h, ok := FarHalfOf("stream")
	if !ok || h.Params == nil || h.Parse == nil {
		t.Fatal("stream has no params codec")
	}
	base := FarSpec{Experiment: "stream", Transport: "udp", Size: 256, Streams: 2, Run: 0xfeed, Drain: time.Second}
	fwd := base
	fwd.ReaderBps, fwd.RecvBuffer, fwd.SeriesStep = 20e6, 65536, 50*time.Millisecond
	rev := base
	rev.Reverse, rev.RateBps, rev.Count, rev.Warmup, rev.SendFor = true, 10e6, 500, 200*time.Millisecond, 2*time.Second
	bidir := rev
	bidir.Reverse, bidir.Bidir = false, true
	for _, tc := range []struct {
		name string
		spec FarSpec
		want FarTest // what Params sets
	}{
		{"forward", fwd, FarTest{Direction: FarForward, Streams: 2, GRO: true}},
		// ⌈10e6 × (256+17)/256 × 1.02⌉: the pacer's rate over what the wire carries.
		{"reverse", rev, FarTest{Direction: FarReverse, Streams: 2, Count: 500, RateBps: 10877344, GRO: true}},
		{"bidir", bidir, FarTest{Direction: FarBidir, Streams: 4, Count: 500, RateBps: 10877344, GRO: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := FarTest{Name: "bench.stream", Direction: FarBidir, Streams: tc.spec.Streams, Duration: 3 * time.Second, WireOverhead: 17}
			raw, err := h.Params(tc.spec, &ft)
			if err != nil {
				t.Fatal(err)
			}
			if ft.Direction != tc.want.Direction || ft.Streams != tc.want.Streams || ft.Count != tc.want.Count || ft.RateBps != tc.want.RateBps || ft.GRO != tc.want.GRO {
				t.Errorf("Params set %+v, want %+v", ft, tc.want)
			}
			got := FarSpec{Experiment: "stream", Transport: "udp", Size: 256, Streams: ft.Streams}
			if err := h.Parse(raw, ft, &got); err != nil {
				t.Fatalf("Parse(%s, %+v): %v", raw, ft, err)
			}
			if got != tc.spec {
				t.Errorf("Parse(%s) = %+v, want %+v", raw, got, tc.spec)
			}
		})
	}

	raw, _ := h.Params(fwd, &FarTest{Direction: FarBidir, Streams: 2, Duration: 3 * time.Second})
	for _, bad := range []struct {
		dir, want string
	}{
		{"sideways", "direction: bench.stream runs forward, reverse or bidir, got sideways"},
		{FarReverse, "params: reader_bps, rcvbuf and series_ms belong to a forward stream, got direction reverse"},
	} {
		got := FarSpec{Experiment: "stream"}
		err := h.Parse(raw, FarTest{Name: "bench.stream", Direction: bad.dir, Streams: 2, Count: 10, Duration: 3 * time.Second}, &got)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse in direction %s = %v, want %q", bad.dir, err, bad.want)
		}
	}
}

// TestWireRate: the rate a client asks the server's pacer for is the pace over the
// messages scaled to what the wire carries per message (UDP's 17-byte token prefix,
// TCP's 4-byte frame length), 2% above; capped at --max-rate, never below the pace.
func TestWireRate(t *testing.T) {
	for _, tc := range []struct {
		pace     float64
		size     int
		overhead int
		maxRate  uint64
		want     uint64
	}{
		{10e6, 256, 17, 0, 10877344},    // ⌈10e6 × 273/256 × 1.02⌉
		{10e6, 256, 4, 0, 10359375},     // ⌈10e6 × 260/256 × 1.02⌉
		{10e6, 256, 17, 10.5e6, 10.5e6}, // the cap holds
		{10e6, 256, 17, 9e6, 10e6},      // a cap below the pace: the pace (the server refuses it, naming --max-rate)
		{1e9, 65490, 17, 0, 1020264774}, // ⌈1e9 × 65507/65490 × 1.02⌉
	} {
		if got := wireRate(tc.pace, tc.size, tc.overhead, tc.maxRate); got != tc.want {
			t.Errorf("wireRate(%g, %d, %d, %d) = %d, want %d", tc.pace, tc.size, tc.overhead, tc.maxRate, got, tc.want)
		}
	}
}

// TestParseStreamRefuses: every stream params a far end must not serve is refused
// with an error that names the field and what it takes.
func TestParseStreamRefuses(t *testing.T) {
	const run = `"run":"000000000000feed"`
	fwd := FarTest{Name: "bench.stream", Direction: FarForward, Streams: 1, Duration: 3 * time.Second}
	rev := FarTest{Name: "bench.stream", Direction: FarReverse, Streams: 1, Duration: 3 * time.Second, RateBps: 1e6}
	bidir := rev
	bidir.Direction, bidir.Streams = FarBidir, 3
	for _, tc := range []struct {
		params string
		t      FarTest
		want   string
	}{
		{`{` + run + `,"extra":1}`, fwd, `params: bench.stream wants {"run", "drain_ms"}`},
		{`{` + run + `} {}`, fwd, `params: bench.stream wants {"run", "drain_ms"}: more follows it`},
		{`{"run":"xyz"}`, fwd, `params.run: want 16 hex digits, not all zero, got "xyz"`},
		{`{"run":"0000000000000000"}`, fwd, `params.run: want 16 hex digits`},
		{`{` + run + `,"drain_ms":30001}`, fwd, "params.drain_ms: must be 0..30000 ms, got 30001"},
		{`{` + run + `,"send_ms":1000}`, bidir, "streams: a bidir bench.stream has two paths per stream, an even number; got 3"},
		{`{` + run + `,"send_ms":1000,"pace_bps":2000000}`, rev, "params.pace_bps: at most the test's rate_bps (1000000), got 2000000"},
		{`{` + run + `,"warmup_ms":4000}`, rev, "params.warmup_ms: must be 0..3000 ms, got 4000"},
		{`{` + run + `,"warmup_ms":1000,"send_ms":2500}`, rev, "params.send_ms: must be 0..2000 ms, got 2500 (warmup_ms 1000 + send_ms must fit in the test's duration_ms 3000)"},
		{`{` + run + `}`, rev, "params.send_ms: a reverse or bidir stream without a count needs a sending time"},
		{`{` + run + `,"send_ms":1000}`, fwd, "params: warmup_ms and send_ms belong to a reverse or bidir stream"},
		{`{` + run + `,"reader_bps":1000}`, fwd, "params.reader_bps: must be 0 or 8000..1000000000000 bits/s, got 1000"},
		{`{` + run + `,"rcvbuf":-1}`, fwd, "params.rcvbuf: must be 0..67108864 bytes, got -1"},
		{`{` + run + `,"series_ms":5}`, fwd, "params.series_ms: must be 0 or 10..30000 ms, got 5"},
		{`{` + run + `,"series_ms":10,"drain_ms":30000}`, FarTest{Name: "bench.stream", Direction: FarForward, Streams: 1, Duration: 60 * time.Second},
			"params.series_ms: 10 ms makes 9000 samples over duration_ms 60000 + drain_ms 30000, more than 2000: want at least 46 ms"},
	} {
		var spec FarSpec
		err := parseStream([]byte(tc.params), tc.t, &spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseStream(%s, %s) = %v, want %q", tc.params, tc.t.Direction, err, tc.want)
		}
	}
}
