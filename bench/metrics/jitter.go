package metrics

// Jitter is the interarrival jitter estimator of RFC 3550 §6.4.1, in nanoseconds.
// Its zero value is ready to use.
//
// For consecutive arrivals i and j, in the order they arrive, with send times S and
// receive times R:
//
//	D(i,j) = (Rj − Ri) − (Sj − Si) = (Rj − Sj) − (Ri − Si)
//	J     += (|D(i,j)| − J) / 16
//
// The first arrival only seeds the estimator. Unlike the RFC's integer
// implementation, J is kept in float64, so small jitter does not round to zero.
// Send and receive clocks need not agree: only differences of transit times enter,
// so a constant clock offset cancels. A stream's send time is its batch's (every
// message handed to the kernel in one call carries one, see bench.streamTx.fill), so
// within a batch D is the arrival spacing alone. Times are ns since the run's epoch; only
// differences are used, and they must fit an int64 (292 years). Receive times are
// the kernel's, where the transport stamps arrivals (see arrivals), else read in
// user space when the receive call returned.
//
// It is one final EWMA value (PITFALLS.md #8): report the delay-variation
// distribution beside it where it matters.
type Jitter struct {
	transit int64   // Ri − Si of the previous arrival, ns
	j       float64 // J, ns
	n       uint64  // arrivals seen
}

// Add folds in one arrival: its send time and receive time, both in ns since the
// run's epoch.
func (j *Jitter) Add(sendNs, recvNs int64) {
	transit := recvNs - sendNs
	if j.n > 0 {
		d := float64(transit - j.transit)
		if d < 0 {
			d = -d
		}
		j.j += (d - j.j) / 16
	}
	j.transit = transit
	j.n++
}

// Value returns the jitter estimate J in ns; 0 before two arrivals.
func (j *Jitter) Value() float64 { return j.j }

// Samples returns how many transit-time differences D went into Value: one fewer than
// the arrivals added, 0 before two arrivals.
func (j *Jitter) Samples() uint64 {
	if j.n == 0 {
		return 0
	}
	return j.n - 1
}
