package bench

import "time"

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
// message handed to the kernel in one call carries one, see streamTx.fill), so
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

// arrivals gives each message of a Recv its arrival time on the run's clock (ns since
// the epoch, monotonic, the clock of header send times): the kernel's receive stamp
// when the transport is a RecvStamper and the message carried one, else the time the
// Recv returned.
//
// A kernel stamp is on CLOCK_REALTIME, the run's clock is monotonic. read takes both
// clocks at the Recv's return (one time.Now) and the conversion subtracts the
// stamp's age by the wall clock from the run-clock time of the read:
// arrival = now − (wall(now) − stamp). The two clocks advance alike (NTP slews
// both), so the result is exact to a few tens of ns, except across a step of the wall
// clock between arrival and read; the jitter estimator needs only differences anyway.
type arrivals struct {
	st     RecvStamper // nil: the transport has no kernel stamps
	stamps []int64     // Unix ns, per message of the last Recv; 0 = none
	k      int         // stamps[:k] belong to the last Recv
	offset int64       // wall clock − run clock at the last Recv's return, ns
}

// newArrivals returns arrivals for t's Recvs of up to batch messages.
func newArrivals(t Transport, batch int) *arrivals {
	a := &arrivals{}
	if st, ok := t.(RecvStamper); ok {
		a.st, a.stamps = st, make([]int64, batch)
	}
	return a
}

// read fetches the kernel stamps of the Recv that just returned n messages; tm is
// the time.Now read when it returned, now the same instant on the run clock.
func (a *arrivals) read(n int, tm time.Time, now int64) {
	a.k = 0
	if a.st == nil {
		return
	}
	a.k = a.st.RecvStamps(a.stamps[:min(n, len(a.stamps))])
	a.offset = tm.UnixNano() - now
}

// at returns message i's arrival time on the run clock, and whether it is the
// kernel's stamp; without one, now (the Recv's return) and false.
func (a *arrivals) at(i int, now int64) (int64, bool) {
	if i < a.k && a.stamps[i] != 0 {
		return a.stamps[i] - a.offset, true
	}
	return now, false
}
