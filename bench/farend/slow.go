package farend

import (
	"fmt"
	"math"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// slowParams are a forward bench.stream's slow receiver (bench's slow-receiver
// experiment runs its far half as a stream with these): the receiver's reading pace,
// the receive buffer it asks for, and its time line's step.
type slowParams struct {
	ReaderBps uint64 `json:"reader_bps,omitempty"` // the receiver reads no faster than this, bits/s; 0 = as fast as it can
	RcvBuf    int    `json:"rcvbuf,omitempty"`     // SO_RCVBUF the receiver asks for on its endpoints, bytes; 0 = leave it
	SeriesMS  uint64 `json:"series_ms,omitempty"`  // sample the receiver's deliveries this often, ms; 0 = no time line
}

// Bounds of a slow receiver's parameters.
const (
	minReaderBps = 8e3      // bits/s, as --reader-rate
	maxReaderBps = 1e12     // bits/s: a pace no host reaches is no pace
	maxRcvBuf    = 64 << 20 // bytes
)

// slowParamsOf is the wire form of spec's slow receiver.
func slowParamsOf(spec bench.FarSpec) slowParams {
	return slowParams{ReaderBps: uint64(math.Round(spec.ReaderBps)), RcvBuf: spec.RecvBuffer, SeriesMS: uint64(spec.SeriesStep.Milliseconds())}
}

// apply checks the slow receiver's parameters against their bounds and the test's
// duration, naming the field and the bound, and sets them in spec.
func (sp slowParams) apply(spec *bench.FarSpec, req remote.TestRequest) error {
	if sp == (slowParams{}) {
		return nil
	}
	if req.Direction != remote.Forward {
		return fmt.Errorf("params: reader_bps, rcvbuf and series_ms belong to a forward stream, got direction %s", req.Direction)
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
		if sp.SeriesMS < uint64(bench.MinSeriesStep.Milliseconds()) || sp.SeriesMS > uint64(maxDrain.Milliseconds()) {
			return fmt.Errorf("params.series_ms: must be 0 or %d..%d ms, got %d", bench.MinSeriesStep.Milliseconds(), maxDrain.Milliseconds(), sp.SeriesMS)
		}
		step = time.Duration(sp.SeriesMS) * time.Millisecond
		// The receiver samples while data flows and while it drains.
		if n := (req.Duration + spec.Drain) / step; n > bench.MaxSeriesSamples {
			return fmt.Errorf("params.series_ms: %d ms makes %d samples over duration_ms %d + drain_ms %d, more than %d: want at least %d ms",
				sp.SeriesMS, n, req.Duration.Milliseconds(), spec.Drain.Milliseconds(), bench.MaxSeriesSamples,
				((req.Duration+spec.Drain)/bench.MaxSeriesSamples).Milliseconds()+1)
		}
	}
	spec.ReaderBps, spec.RecvBuffer, spec.SeriesStep = float64(sp.ReaderBps), sp.RcvBuf, step
	return nil
}
