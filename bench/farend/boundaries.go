package farend

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/tcp"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// bench.boundaries against a far end: the client writes, the server half reads
// (bench.ServeBoundaries) and sends nothing on the data path. Each part of the
// experiment is a test of its own, one bidir data path, with these parameters.

// boundariesParams are a bench.boundaries test's parameters (TestRequest.Params).
type boundariesParams struct {
	Part    string `json:"part"`     // bench.BoundariesBurst, BoundariesLargest or BoundariesRaw
	Seed    int64  `json:"seed"`     // the payload's seed
	QuietMS uint64 `json:"quiet_ms"` // the reader stops when nothing arrived for this long, ms
}

// boundariesParamsOf returns the parameters of spec's test.
func boundariesParamsOf(spec bench.FarSpec) (json.RawMessage, error) {
	fb := spec.Boundaries
	if fb == nil {
		return nil, fmt.Errorf("farend: a %s cell without its part", spec.Experiment)
	}
	return json.Marshal(boundariesParams{Part: fb.Part, Seed: fb.Seed, QuietMS: uint64(fb.Quiet.Milliseconds())})
}

// parseBoundaries checks a bench.boundaries request and returns its server half's
// spec: one bidir data path, a known part, a quiet time of 1 ms..maxDrain.
func parseBoundaries(req remote.TestRequest) (bench.FarSpec, error) {
	if req.Streams != 1 {
		return bench.FarSpec{}, fmt.Errorf("streams: %s runs one data path, got %d", req.Experiment, req.Streams)
	}
	if req.Direction != remote.Bidir {
		return bench.FarSpec{}, fmt.Errorf("direction: %s runs bidir, got %s", req.Experiment, req.Direction)
	}
	var bp boundariesParams
	dec := json.NewDecoder(bytes.NewReader(req.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bp); err != nil {
		return bench.FarSpec{}, fmt.Errorf("params: %s wants {\"part\", \"seed\", \"quiet_ms\"}: %v", req.Experiment, err)
	}
	switch bp.Part {
	case bench.BoundariesBurst, bench.BoundariesLargest:
	case bench.BoundariesRaw:
		if req.Transport != "tcp" {
			return bench.FarSpec{}, fmt.Errorf("params.part: %s needs a byte stream (tcp), got %s", bp.Part, req.Transport)
		}
	default:
		return bench.FarSpec{}, fmt.Errorf("params.part: want %s, %s or %s, got %q", bench.BoundariesBurst, bench.BoundariesLargest, bench.BoundariesRaw, bp.Part)
	}
	quiet, err := msParam("params.quiet_ms", bp.QuietMS, 1, uint64(maxDrain.Milliseconds()))
	if err != nil {
		return bench.FarSpec{}, err
	}
	return bench.FarSpec{Experiment: report.ExpBoundaries, Transport: req.Transport, Size: req.Size, Streams: 1, Duration: req.Duration,
		Boundaries: &bench.FarBoundaries{Part: bp.Part, Seed: bp.Seed, Quiet: quiet}}, nil
}

// MaxMessage is the largest message the server takes as one on transport's data
// path, and why: its --max-size, and under it, for UDP, a datagram's payload less the
// data path's prefix, for TCP the framing's limit.
func (f *Far) MaxMessage(transport string) (size int, why string) {
	lim := f.cl.Limits().MaxSize
	own, ownWhy := tcp.DefaultMaxMessage, fmt.Sprintf("the framing's limit (%d bytes); a byte stream itself has none", tcp.DefaultMaxMessage)
	if transport == "udp" {
		own = remote.MaxUDPMessage
		ownWhy = fmt.Sprintf("the %d-byte UDP payload less the data path's %d-byte prefix (token and kind)", udp.MaxPayloadIPv4, udp.MaxPayloadIPv4-remote.MaxUDPMessage)
	}
	if lim > 0 && lim < own {
		return lim, fmt.Sprintf("the server's --max-size (%d bytes)", lim)
	}
	return own, ownWhy
}
