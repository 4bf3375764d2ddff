package render

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// noisyMark follows a figure whose runs disagree (report.Spread.Noisy); the
// section's note says what it means. Plain ASCII, and no markdown syntax.
const noisyMark = " !"

// interval formats iv, a median from runs runs, in one unit of scale: with its 95%
// confidence interval, "941 [925, 960] Mbit/s (n=7)", when the runs reached one (6
// runs or more); else with the runs' range, "31.2 Gbit/s (29.0-33.1)", which is what
// an interval of fewer runs holds (bench.Summarize: the least and the greatest run).
func interval(iv report.Interval, runs int, scale []units.Unit, intBase bool) string {
	if iv.Confidence < 0.95-1e-9 {
		return units.RangeOf(iv.Median, iv.Lo, iv.Hi, scale, intBase)
	}
	return units.IntervalOf(iv.Median, iv.Lo, iv.Hi, iv.Confidence, runs, scale, intBase)
}

// measured formats figure f of a cell of several runs (rp): its median with its
// range or CI (interval), and noisyMark when its runs disagree; noisy says so. s is
// the figure as one run shows it, returned when rp has no interval for f.
func measured(f figure, rp *report.Repeat, s string) (out string, noisy bool) {
	iv, ok := rp.CI[f.ci]
	if !ok {
		return s, false
	}
	out = f.ciFmt(iv, rp.Runs)
	if slices.Contains(rp.Noisy, f.ci) {
		return out + noisyMark, true
	}
	return out, false
}

// repeatNote says how a section's figures of several runs read; noisy: some carry
// noisyMark.
func repeatNote(noisy bool) string {
	s := " Figures of several runs: the median (least-greatest run), or the median [95% CI] (n=runs) from 6 runs."
	if noisy {
		s += fmt.Sprintf(" A figure marked %q is noisy: its runs span more than %g%% of their median.", strings.TrimSpace(noisyMark), 100*report.NoisyRange)
	}
	return s
}
