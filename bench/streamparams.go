package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// streamParams are a stream test's own parameters on the wire (FarHalf.Params and
// Parse): the run id, the receiver's drain, the server's senders' warm-up, sending
// time and pace (reverse, bidir), and a forward stream's slow receiver.
type streamParams struct {
	Run      string `json:"run"`                 // the run id every message carries, 16 hex digits
	DrainMS  uint64 `json:"drain_ms"`            // the receiver's longest wait for stragglers, ms
	WarmupMS uint64 `json:"warmup_ms,omitempty"` // reverse, bidir: the server's senders warm up this long first
	SendMS   uint64 `json:"send_ms,omitempty"`   // reverse, bidir without a count: how long they send, ms
	// PaceBps is the server's senders' pace (reverse, bidir), bits/s of messages as
	// bench counts them. The test's rate is what the wire carries, framing included,
	// a little above: the server's own pacer is then a cap that the senders' exact
	// timetable never meets. 0 = the test's rate.
	PaceBps uint64 `json:"pace_bps,omitempty"`

	slowParams // forward: a slow receiver
}

// slowParams are a forward stream's slow receiver (the slow-receiver experiment
// runs its far half as a stream with these): the receiver's reading pace, the
// receive buffer it asks for, and its time line's step.
type slowParams struct {
	ReaderBps uint64 `json:"reader_bps,omitempty"` // the receiver reads no faster than this, bits/s; 0 = as fast as it can
	RcvBuf    int    `json:"rcvbuf,omitempty"`     // SO_RCVBUF the receiver asks for on its endpoints, bytes; 0 = leave it
	SeriesMS  uint64 `json:"series_ms,omitempty"`  // sample the receiver's deliveries this often, ms; 0 = no time line
}

// Bounds of a far stream's parameters.
const (
	maxFarDrain  = 30 * time.Second // a receiver's drain, and a time line's step
	minReaderBps = 8e3              // bits/s, as --reader-rate
	maxReaderBps = 1e12             // bits/s: a pace no host reaches is no pace
	maxRcvBuf    = 64 << 20         // bytes
)

// streamParamsOf is the wire form of spec's stream, and what its test asks of the
// data path, set in t: the direction (forward; reverse or bidir when the server
// sends, with two paths per stream for bidir), the server senders' count and pacer
// rate, and GRO for a UDP receiver unless --no-gso.
func streamParamsOf(spec FarSpec, t *FarTest) (json.RawMessage, error) {
	t.GRO = spec.Transport == "udp" && !spec.Net.NoGSO
	t.Direction = FarForward
	sp := streamParams{Run: fmt.Sprintf("%016x", spec.Run), DrainMS: uint64(spec.Drain.Milliseconds())}
	if spec.Reverse || spec.Bidir {
		t.Direction, t.Count = FarReverse, spec.Count
		if spec.RateBps > 0 {
			sp.PaceBps = uint64(spec.RateBps)
			t.RateBps = wireRate(spec.RateBps, spec.Size, t.WireOverhead, t.MaxRateBps)
		}
		sp.WarmupMS, sp.SendMS = uint64(spec.Warmup.Milliseconds()), uint64(spec.SendFor.Milliseconds())
	}
	if spec.Bidir { // a path per stream each way: ServeStream
		t.Direction, t.Streams = FarBidir, 2*spec.Streams
	}
	sp.slowParams = slowParamsOf(spec)
	return json.Marshal(sp)
}

// wireRate is the rate to ask the server's pacer for, for senders that pace
// size-byte messages at pace bits/s: what the wire carries per message (overhead
// bytes more: the UDP path's token prefix, the TCP frame's length prefix), 2% above,
// so that the pacer, whose steps are coarse, never holds a sender that keeps its own
// timetable. It is capped at the server's --max-rate (maxRate; 0 = unknown), which
// then holds.
func wireRate(pace float64, size, overhead int, maxRate uint64) uint64 {
	r := uint64(math.Ceil(pace * float64(size+overhead) / float64(size) * 1.02))
	if maxRate > 0 {
		r = min(r, maxRate)
	}
	return max(r, uint64(pace))
}

// parseStream checks a stream test's params and its direction, naming the field,
// and sets them in spec, whose other fields are the test's.
func parseStream(raw json.RawMessage, t FarTest, spec *FarSpec) error {
	var sp streamParams
	if err := decodeStrict(raw, &sp); err != nil {
		return fmt.Errorf("params: %s wants {\"run\", \"drain_ms\"}: %v", t.Name, err)
	}
	if t.Direction != FarForward && t.Direction != FarReverse && t.Direction != FarBidir {
		return fmt.Errorf("direction: %s runs forward, reverse or bidir, got %s", t.Name, t.Direction)
	}
	run, err := strconv.ParseUint(sp.Run, 16, 64)
	if err != nil || run == 0 || len(sp.Run) != 16 {
		return fmt.Errorf("params.run: want 16 hex digits, not all zero, got %q", sp.Run)
	}
	drain, err := ParamMS("params.drain_ms", sp.DrainMS, 0, uint64(maxFarDrain.Milliseconds()))
	if err != nil {
		return err
	}
	spec.Run, spec.Drain = run, drain
	if t.Direction == FarBidir { // the first half of the streams is the client's to send on, the second the server's
		if t.Streams%2 != 0 {
			return fmt.Errorf("streams: a bidir %s has two paths per stream, an even number; got %d", t.Name, t.Streams)
		}
		spec.Bidir, spec.Streams = true, t.Streams/2
	}
	if t.Direction == FarReverse || t.Direction == FarBidir {
		spec.Reverse = t.Direction == FarReverse
		spec.Count, spec.RateBps = t.Count, float64(t.RateBps)
		if sp.PaceBps > 0 {
			if t.RateBps == 0 || sp.PaceBps > t.RateBps {
				return fmt.Errorf("params.pace_bps: at most the test's rate_bps (%d), got %d", t.RateBps, sp.PaceBps)
			}
			spec.RateBps = float64(sp.PaceBps)
		}
		// The test's duration bounds what the server sends, warm-up included:
		// compared in ms, as the wire has them, before anything can wrap.
		durMS := uint64(max(t.Duration, 0) / time.Millisecond)
		if spec.Warmup, err = ParamMS("params.warmup_ms", sp.WarmupMS, 0, durMS); err != nil {
			return err
		}
		if spec.SendFor, err = ParamMS("params.send_ms", sp.SendMS, 0, durMS-sp.WarmupMS); err != nil {
			return fmt.Errorf("%w (warmup_ms %d + send_ms must fit in the test's duration_ms %d)", err, sp.WarmupMS, durMS)
		}
		if spec.Count == 0 && spec.SendFor <= 0 {
			return errors.New("params.send_ms: a reverse or bidir stream without a count needs a sending time")
		}
	} else if sp.WarmupMS != 0 || sp.SendMS != 0 {
		return errors.New("params: warmup_ms and send_ms belong to a reverse or bidir stream")
	}
	return sp.slowParams.apply(spec, t)
}

// slowParamsOf is the wire form of spec's slow receiver.
func slowParamsOf(spec FarSpec) slowParams {
	return slowParams{ReaderBps: uint64(math.Round(spec.ReaderBps)), RcvBuf: spec.RecvBuffer, SeriesMS: uint64(spec.SeriesStep.Milliseconds())}
}

// apply checks the slow receiver's parameters against their bounds and the test's
// duration, naming the field and the bound, and sets them in spec.
func (sp slowParams) apply(spec *FarSpec, t FarTest) error {
	if sp == (slowParams{}) {
		return nil
	}
	if t.Direction != FarForward {
		return fmt.Errorf("params: reader_bps, rcvbuf and series_ms belong to a forward stream, got direction %s", t.Direction)
	}
	if sp.ReaderBps != 0 && (sp.ReaderBps < minReaderBps || sp.ReaderBps > maxReaderBps) {
		return fmt.Errorf("params.reader_bps: must be 0 or %d..%d bits/s, got %d", uint64(minReaderBps), uint64(maxReaderBps), sp.ReaderBps)
	}
	if sp.RcvBuf < 0 || sp.RcvBuf > maxRcvBuf {
		return fmt.Errorf("params.rcvbuf: must be 0..%d bytes, got %d", maxRcvBuf, sp.RcvBuf)
	}
	var step time.Duration
	if sp.SeriesMS != 0 {
		// Compared in ms, as the wire has it, before it becomes a time.Duration.
		if sp.SeriesMS < uint64(MinSeriesStep.Milliseconds()) || sp.SeriesMS > uint64(maxFarDrain.Milliseconds()) {
			return fmt.Errorf("params.series_ms: must be 0 or %d..%d ms, got %d", MinSeriesStep.Milliseconds(), maxFarDrain.Milliseconds(), sp.SeriesMS)
		}
		step = time.Duration(sp.SeriesMS) * time.Millisecond
		// The receiver samples while data flows and while it drains.
		if n := (t.Duration + spec.Drain) / step; n > MaxSeriesSamples {
			return fmt.Errorf("params.series_ms: %d ms makes %d samples over duration_ms %d + drain_ms %d, more than %d: want at least %d ms",
				sp.SeriesMS, n, t.Duration.Milliseconds(), spec.Drain.Milliseconds(), MaxSeriesSamples,
				((t.Duration+spec.Drain)/MaxSeriesSamples).Milliseconds()+1)
		}
	}
	spec.ReaderBps, spec.RecvBuffer, spec.SeriesStep = float64(sp.ReaderBps), sp.RcvBuf, step
	return nil
}
