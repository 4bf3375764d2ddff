package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// echoCount is an experiment defined here, in a test, to show that a new experiment
// is its two halves plus one registration: the client sends Params.Count numbered
// messages one at a time and counts the echoes that come back intact. Its
// registration lists the row of the properties table it derives (echoedRule).
const echoCount = "echo-count"

// echoPlain is echoCount again under another name, registered with no section: the
// reports show it as a generic table headed by its name.
const echoPlain = "echo-plain"

// echoTitle heads echoCount's section in the reports, as its registration says.
const echoTitle = "Echoes one at a time (echo-count)"

// echoedRule is echoCount's own property row: how many messages came back intact
// over each transport.
var echoedRule = report.Rule{ID: "echoed", Derive: func(in report.Input) (report.Property, bool) {
	echoed := map[string]string{}
	for _, r := range in.Results {
		if r.Error == "" {
			echoed[r.Transport] = fmt.Sprintf("%v of %d echoed", r.Observed["echoed"], r.Metrics.SentMsgs)
		}
	}
	if echoed["tcp"] == "" || echoed["udp"] == "" {
		return report.Property{}, false
	}
	return report.Property{Property: "echoes", Claim: "a message sent one at a time comes back", TCP: echoed["tcp"], UDP: echoed["udp"],
		Evidence: map[string]any{"experiment": in.Experiment}}, true
}}

func init() {
	x := bench.Experiment{Name: echoCount, Optional: true, Measures: true,
		Help:       "a test's own: numbered messages one at a time, each echoed back",
		Section:    &report.Section{Title: echoTitle, Layout: report.LayoutTable},
		Properties: []report.Rule{echoedRule},
		Server: func(ctx context.Context, t transport.Transport, p report.Params) error {
			bufs, sizes := [][]byte{make([]byte, p.Size)}, []int{0}
			for ctx.Err() == nil {
				t.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := t.Recv(bufs, sizes)
				if n == 1 {
					if _, err := t.Send([][]byte{bufs[0][:sizes[0]]}); err != nil {
						return err
					}
				}
				var ne interface{ Timeout() bool }
				if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
					return nil // the client is gone
				}
			}
			return nil
		},
		Client: func(ctx context.Context, c bench.Cell) (bench.Outcome, error) {
			var o bench.Outcome
			t, err := c.Network.Dial(ctx, c.Addr)
			if err != nil {
				return o, err
			}
			defer t.Close()
			msg, bufs, sizes := make([]byte, c.Params.Size), [][]byte{make([]byte, c.Params.Size)}, []int{0}
			for i := range c.Params.Count {
				copy(msg, fmt.Sprintf("message %d", i))
				if _, err := t.Send([][]byte{msg}); err != nil {
					return o, err
				}
				o.Metrics.SentMsgs++
				t.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := t.Recv(bufs, sizes); err != nil || n != 1 {
					return o, fmt.Errorf("echo %d: %d messages, %v", i, n, err)
				}
				if bytes.Equal(bufs[0][:sizes[0]], msg) {
					o.Metrics.RecvMsgs++
				}
			}
			o.Observed = map[string]any{"echoed": o.Metrics.RecvMsgs}
			return o, nil
		},
	}
	bench.RegisterExperiment(x)
	x.Name, x.Section, x.Properties = echoPlain, nil, nil
	bench.RegisterExperiment(x)
}

// TestNewExperiment: an experiment registered by a test, with no file of bench
// changed, runs over both transports with a known count, reports what its halves
// measured and the property row its registration lists, and stays out of the
// default suite (it is optional). The report holds its section, and the text
// rendering heads its tables with the section's title.
func TestNewExperiment(t *testing.T) {
	if !slices.Contains(bench.Experiments(), echoCount) {
		t.Fatalf("experiments %v: %s not registered", bench.Experiments(), echoCount)
	}
	if p := (bench.Plan{}).WithDefaults(); slices.Contains(p.Experiments, echoCount) {
		t.Errorf("default suite %v includes the optional %s", p.Experiments, echoCount)
	}
	const count = 300
	rep, err := bench.Run(context.Background(), bench.Plan{Experiments: []string{echoCount}, Sizes: []int{100}, Count: count,
		Warmup: bench.NoWarmup})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rep.Results {
		got[r.Transport] = true
		m := r.Metrics
		if r.Experiment != echoCount || r.Error != "" || m.SentMsgs != count || m.RecvMsgs != count || r.Observed["echoed"] != uint64(count) {
			t.Errorf("%s over %s: error %q, sent %d, echoed %d, observed %v; want %d each", r.Experiment, r.Transport, r.Error, m.SentMsgs, m.RecvMsgs, r.Observed, count)
		}
	}
	if !got["tcp"] || !got["udp"] {
		t.Errorf("results for %v, want tcp and udp", got)
	}
	want := fmt.Sprintf("%d of %d echoed", count, count)
	i := slices.IndexFunc(rep.Properties, func(p report.Property) bool { return p.ID == "echoed" })
	if i < 0 {
		t.Fatalf("no echoed row in %+v", rep.Properties)
	}
	if p := rep.Properties[i]; p.TCP != want || p.UDP != want || p.Evidence["experiment"] != echoCount || p.ByTransport["udp"] != want {
		t.Errorf("echoed row %+v, want tcp and udp %q from %s", p, want, echoCount)
	}
	if s := rep.SectionOf(echoCount); len(rep.Sections) != 1 || s.Title != echoTitle || s.Layout != report.LayoutTable {
		t.Errorf("sections %+v, want echo-count's, titled %q", rep.Sections, echoTitle)
	}
	var text bytes.Buffer
	if err := render.Text(&text, rep, render.Verbose(true), render.Width(200)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "\n"+echoTitle+"\n") || !strings.Contains(text.String(), "echoed") {
		t.Errorf("text: no section titled %q with its observations:\n%s", echoTitle, text.String())
	}
}

// TestNewExperimentGenericSection: an experiment registered from outside with no
// section gets a generic one, headed by its name, in the report and its rendering.
func TestNewExperimentGenericSection(t *testing.T) {
	rep, err := bench.Run(context.Background(), bench.Plan{Experiments: []string{echoPlain}, Sizes: []int{100}, Count: 10,
		Transports: []string{"tcp"}, Warmup: bench.NoWarmup})
	if err != nil {
		t.Fatal(err)
	}
	if want := report.GenericSection(echoPlain); len(rep.Sections) != 1 || !reflect.DeepEqual(rep.Sections[0], want) {
		t.Errorf("sections %+v, want %+v", rep.Sections, want)
	}
	var text bytes.Buffer
	if err := render.Text(&text, rep, render.Verbose(true), render.Width(200)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "\n"+echoPlain+"\n") {
		t.Errorf("text: no section headed %q:\n%s", echoPlain, text.String())
	}
}
