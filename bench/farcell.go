package bench

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// A FarAddresser is a FarCell that knows where the far ends of its data path are:
// the far host's address (in remote mode, that of the control connection) and each
// Transport's port there. The property experiments that reach the far host outside
// the data path need it: refused (a closed port there) and close (a new client of
// the data port).
type FarAddresser interface {
	// RemoteAddrs are the far ends of Transports, in their order.
	RemoteAddrs() []netip.AddrPort
}

// farOne is a far cell with one data path, seen from the client.
type farOne struct {
	fc     FarCell
	t      Transport      // this side's end of the data path
	remote netip.AddrPort // the far end of t
}

// openFarOne opens the server half of a property cell at the far end: one data path
// of nw, for at most dur.
func openFarOne(ctx context.Context, e *runEnv, exp string, nw Network, size int, dur time.Duration) (*farOne, error) {
	return openFarSpec(ctx, e, FarSpec{Experiment: exp, Transport: nw.Name(), Size: size, Streams: 1, Duration: dur})
}

// openFarSpec is openFarOne for a spec of one data path (Streams 1).
func openFarSpec(ctx context.Context, e *runEnv, spec FarSpec) (*farOne, error) {
	exp := spec.Experiment
	fc, err := e.openFar(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("far end: %w", err)
	}
	fo := &farOne{fc: fc}
	ts := fc.Transports()
	var addrs []netip.AddrPort
	if fa, ok := fc.(FarAddresser); ok {
		addrs = fa.RemoteAddrs()
	}
	switch {
	case len(ts) != 1:
		err = fmt.Errorf("far end: opened %d data paths, want 1", len(ts))
	case len(addrs) != 1 || !addrs[0].IsValid():
		err = fmt.Errorf("far end: the data path's far address is unknown (%v): %s needs it", addrs, exp)
	}
	if err != nil {
		for _, t := range ts {
			t.Close()
		}
		fo.finish(ctx)
		return nil, err
	}
	fo.t, fo.remote = ts[0], addrs[0]
	return fo, nil
}

// finish closes this side's endpoint, ends the far half and returns what it
// reported, its error (if any) added to its warnings.
func (fo *farOne) finish(ctx context.Context) FarResult {
	if fo.t != nil {
		fo.t.Close()
	}
	r, err := fo.fc.Finish(ctx)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("far end: %v", err))
	}
	return r
}

// addFar adds what the far end reported of one part of a cell that runs several far
// tests (close, boundaries): its warnings, and its CPU to the cell's server CPU.
func (o *outcome) addFar(r FarResult) {
	o.warns = append(o.warns, r.Warnings...)
	switch {
	case r.CPUSec == nil:
	case o.m.ServerCPUSec == nil:
		o.m.ServerCPUSec = f64p(*r.CPUSec)
	default:
		*o.m.ServerCPUSec += *r.CPUSec
	}
}
