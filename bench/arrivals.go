package bench

import (
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

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
	st     transport.RecvStamper // nil: the transport has no kernel stamps
	stamps []int64               // Unix ns, per message of the last Recv; 0 = none
	k      int                   // stamps[:k] belong to the last Recv
	offset int64                 // wall clock − run clock at the last Recv's return, ns
}

// newArrivals returns arrivals for t's Recvs of up to batch messages.
func newArrivals(t transport.Transport, batch int) *arrivals {
	a := &arrivals{}
	if st, ok := t.(transport.RecvStamper); ok {
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
