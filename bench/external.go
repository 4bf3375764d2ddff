package bench

import (
	"context"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// An Experiment is an experiment registered from outside this package (a test's, or
// one in a package of its own), as two halves. For each cell the runner opens the
// server end with the cell's Network, serves every endpoint it accepts with Server,
// in this process, and runs Client against that end's address. It runs on one host
// (loopback, or across the emulated link); against a remote server its cells are
// reported skipped.
type Experiment struct {
	Name     string // as --experiments and reports spell it
	Help     string // what it does and shows, one sentence for --help
	Measures bool   // a measurement, run at every --sizes; else once, at 1024-byte messages
	// Optional experiments run only when named (--experiments), never in the default
	// suite; the others run after the built-in ones.
	Optional bool
	// Section is how the reports show its results (its Experiment is Name); nil for
	// a generic table headed by Name (report.GenericSection).
	Section *report.Section
	Client  func(ctx context.Context, c Cell) (Outcome, error)
	Server  func(ctx context.Context, t transport.Transport, p report.Params) error
	// Properties are the rows of the properties table it derives from its results:
	// they follow the built-in rows.
	Properties []report.Rule
}

// A Cell is what an Experiment's client half works with: the Network to dial, the
// address of the server half, and the cell's parameters.
type Cell struct {
	Network transport.Network
	Addr    string
	Params  report.Params
}

// An Outcome is what an Experiment's client half measured: the result's metrics,
// warnings and observations (Result.Observed).
type Outcome struct {
	Metrics  report.Metrics
	Warnings []string
	Observed map[string]any
}

// externalPlace is where the default suite runs experiments registered from
// outside, after the built-in ones (places 10..110).
const externalPlace = 1000

// RegisterExperiment makes x known to the runner, the flags and the reports. It
// panics on a name already registered or a missing half: registrations are a
// program's constants, made at init.
func RegisterExperiment(x Experiment) {
	if x.Client == nil || x.Server == nil {
		panic("bench: RegisterExperiment needs both halves")
	}
	var section report.Section
	if x.Section != nil {
		section = *x.Section
	}
	registerExperiment(experimentSpec{name: x.Name, section: section, help: x.Help, place: externalPlace, measures: x.Measures,
		optional: x.Optional, properties: x.Properties, notRemote: x.Name + " is registered from outside bench: it runs on one host",
		run: func(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
			srv, err := startServer(ctx, e, nw, func(ctx context.Context, t transport.Transport) error { return x.Server(ctx, t, p) })
			if err != nil {
				return outcome{}, err
			}
			o, err := x.Client(ctx, Cell{Network: nw, Addr: srv.addr(), Params: p})
			if serr := srv.stop(); err == nil {
				err = serr
			}
			if err != nil {
				return outcome{}, err
			}
			return outcome{m: o.Metrics, warns: o.Warnings, observed: o.Observed}, nil
		}})
}
