package farend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// Millisecond values near and past the range a time.Duration holds: 9223372036854
// ms × 10^6 wraps to about 10.96 s, 2^64-1 ms to -1 ms, 2^63 ms to 0.
const (
	wrapsTo11s  = 9223372036854
	wrapsToNeg  = math.MaxUint64
	wrapsToZero = 1 << 63
)

// TestParamsOverflow: every millisecond field of a test's parameters is checked in
// the wire's own unit before it becomes a time.Duration, so that no value wraps past
// its bound; the refusal names the field and its range.
func TestParamsOverflow(t *testing.T) {
	const run = `"run":"00000000000000ab"`
	rev := remote.TestRequest{Experiment: "bench.stream", Transport: "udp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Reverse}
	fwd := rev
	fwd.Direction = remote.Forward
	bnd := remote.TestRequest{Experiment: "bench.boundaries", Transport: "udp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Bidir}
	for _, tc := range []struct {
		name   string
		req    remote.TestRequest
		params string
		want   string // "" = accepted
	}{
		{"fits", rev, `{` + run + `,"drain_ms":10,"warmup_ms":200,"send_ms":800}`, ""},
		{"warmup and send wrap to 11 s each", rev, fmt.Sprintf(`{%s,"drain_ms":10,"warmup_ms":%d,"send_ms":%d}`, run, uint64(wrapsTo11s), uint64(wrapsTo11s)), "params.warmup_ms: must be 0..1000 ms, got 9223372036854"},
		{"send wraps to 11 s", rev, fmt.Sprintf(`{%s,"drain_ms":10,"send_ms":%d}`, run, uint64(wrapsTo11s)), "params.send_ms: must be 0..1000 ms, got 9223372036854"},
		{"send 2^64-1 wraps to -1 ms", rev, fmt.Sprintf(`{%s,"drain_ms":10,"warmup_ms":100,"send_ms":%d}`, run, uint64(wrapsToNeg)), "params.send_ms: must be 0..900 ms, got 18446744073709551615"},
		{"warmup 2^64-1 wraps to -1 ms", rev, fmt.Sprintf(`{%s,"drain_ms":10,"warmup_ms":%d,"send_ms":500}`, run, uint64(wrapsToNeg)), "params.warmup_ms: must be 0..1000 ms"},
		{"warmup 2^63 wraps to 0", rev, fmt.Sprintf(`{%s,"drain_ms":10,"warmup_ms":%d,"send_ms":500}`, run, uint64(wrapsToZero)), "params.warmup_ms: must be 0..1000 ms, got 9223372036854775808"},
		{"sum past the duration", rev, `{` + run + `,"drain_ms":10,"warmup_ms":600,"send_ms":600}`, "params.send_ms: must be 0..400 ms, got 600"},
		{"drain 2^64-1 wraps to -1 ms", fwd, fmt.Sprintf(`{%s,"drain_ms":%d}`, run, uint64(wrapsToNeg)), "params.drain_ms: must be 0..30000 ms, got 18446744073709551615"},
		{"drain 2^63 wraps to 0", fwd, fmt.Sprintf(`{%s,"drain_ms":%d}`, run, uint64(wrapsToZero)), "params.drain_ms: must be 0..30000 ms"},
		{"drain wraps to 11 s", fwd, fmt.Sprintf(`{%s,"drain_ms":%d}`, run, uint64(wrapsTo11s)), "params.drain_ms: must be 0..30000 ms"},
		{"series wraps to 11 s", fwd, fmt.Sprintf(`{%s,"drain_ms":10,"reader_bps":8000,"series_ms":%d}`, run, uint64(wrapsTo11s)), "params.series_ms: must be 0 or 10..30000 ms"},
		{"series 2^64-1", fwd, fmt.Sprintf(`{%s,"drain_ms":10,"reader_bps":8000,"series_ms":%d}`, run, uint64(wrapsToNeg)), "params.series_ms: must be 0 or 10..30000 ms"},
		{"series fits", fwd, `{` + run + `,"drain_ms":10,"reader_bps":8000,"series_ms":50}`, ""},
		{"quiet fits", bnd, `{"part":"burst","seed":1,"quiet_ms":100}`, ""},
		{"quiet wraps to 11 s", bnd, fmt.Sprintf(`{"part":"burst","seed":1,"quiet_ms":%d}`, uint64(wrapsTo11s)), "params.quiet_ms: must be 1..30000 ms, got 9223372036854"},
		{"quiet 2^64-1 wraps to -1 ms", bnd, fmt.Sprintf(`{"part":"burst","seed":1,"quiet_ms":%d}`, uint64(wrapsToNeg)), "params.quiet_ms: must be 1..30000 ms"},
		{"quiet 0", bnd, `{"part":"burst","seed":1,"quiet_ms":0}`, "params.quiet_ms: must be 1..30000 ms, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Params = []byte(tc.params)
			err := Runner{}.Check(req)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check(%s %s, params %s) = %v, want %q", req.Experiment, req.Direction, tc.params, err, tc.want)
			}
		})
	}
	// What passes becomes the durations asked for, never a wrapped one.
	req := rev
	req.Params = []byte(`{` + run + `,"drain_ms":30000,"warmup_ms":1000,"send_ms":0}`)
	req.Count = 10
	x, h, _ := farHalf(req.Experiment)
	spec, err := specOf(req, x, h)
	if err != nil || spec.Drain != 30*time.Second || spec.Warmup != time.Second || spec.SendFor != 0 {
		t.Errorf("specOf(%s) = drain %v, warmup %v, send %v, %v; want 30s, 1s, 0", req.Params, spec.Drain, spec.Warmup, spec.SendFor, err)
	}
}

// TestParamsOverflowRefused: through a real server, a 1 s reverse stream whose
// warm-up and sending time each wrap to about 11 s as time.Durations is refused
// before its data path opens, naming the field.
func TestParamsOverflowRefused(t *testing.T) {
	addr := startServer(t, remote.Limits{})
	ctx := context.Background()
	cl, err := (&remote.Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: plainRunner("")}).Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := remote.TestRequest{Experiment: "bench.stream", Transport: "udp", Size: 64, Duration: time.Second, Streams: 1,
		Direction: remote.Reverse, RateBps: 1e6,
		Params: fmt.Appendf(nil, `{"run":"00000000000000ab","drain_ms":10,"warmup_ms":%d,"send_ms":%d}`, uint64(wrapsTo11s), uint64(wrapsTo11s))}
	_, err = cl.Run(ctx, req)
	var re *remote.RefusedError
	if !errors.As(err, &re) || re.ID == 0 || !strings.Contains(re.Reason, "params.warmup_ms: must be 0..1000 ms, got 9223372036854") {
		t.Fatalf("Run(1 s reverse stream, warmup_ms = send_ms = %d) = %v; want the test refused naming params.warmup_ms and its range", uint64(wrapsTo11s), err)
	}
	if cl.Broken() != nil {
		t.Errorf("the session broke after the refusal: %v", cl.Broken())
	}
}
