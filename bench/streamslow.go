package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// A slow receiver across hosts (slow-receiver with Plan.Far): the far receiver sizes
// its endpoints' receive buffers, reads at the reader's pace and keeps a time line of
// its deliveries; this host sizes its senders' send buffers, keeps a time line of
// what it sent, and merges the two.

// Bounds of a time line.
const (
	MinSeriesStep    = 10 * time.Millisecond // the shortest step between samples
	MaxSeriesSamples = 2000                  // the most samples one time line keeps
)

// RecvSample is one point of a far receiver's time line.
type RecvSample struct {
	TS       float64 `json:"t_s"`       // seconds since the receiver's first data arrival
	RecvMsgs uint64  `json:"recv_msgs"` // cumulative, unique intact data messages delivered
}

// setBuffers asks every endpoint in ts for recv bytes of SO_RCVBUF and send bytes of
// SO_SNDBUF (0 leaves one as it is) and reads the grant back. It returns the
// smallest grant over the endpoints (0 where none could be read) and a warning for
// each endpoint that cannot be sized, or got less than it asked for.
func setBuffers(ts []transport.Transport, recv, send int) (gotRecv, gotSend int, warns []string) {
	if recv <= 0 && send <= 0 {
		return 0, 0, nil
	}
	for i, t := range ts {
		bs, ok := t.(transport.BufferSetter)
		if !ok {
			warns = append(warns, fmt.Sprintf("endpoint %d (%T): cannot resize its socket buffers: flow control shows later", i, t))
			continue
		}
		if err := bs.SetBuffers(recv, send); err != nil {
			warns = append(warns, fmt.Sprintf("endpoint %d: %v", i, err))
			continue
		}
		bz, ok := t.(transport.BufferSizer)
		if !ok {
			continue
		}
		r, s, err := bz.BufferSizes()
		if err != nil {
			warns = append(warns, fmt.Sprintf("endpoint %d: buffer sizes set, not read back: %v", i, err))
			continue
		}
		// Linux doubles a request; less than asked means net.core.rmem_max or
		// wmem_max capped it.
		if recv > 0 {
			if r < recv {
				warns = append(warns, fmt.Sprintf("endpoint %d: receive buffer: want %d, got %d (net.core.rmem_max caps it)", i, recv, r))
			}
			gotRecv = minGrant(gotRecv, r)
		}
		if send > 0 {
			if s < send {
				warns = append(warns, fmt.Sprintf("endpoint %d: send buffer: want %d, got %d (net.core.wmem_max caps it)", i, send, s))
			}
			gotSend = minGrant(gotSend, s)
		}
	}
	return gotRecv, gotSend, warns
}

// minGrant is the smaller of two grants, 0 meaning none yet.
func minGrant(a, b int) int {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// rxSeries samples a receiver's deliveries every step from its first data arrival,
// at most MaxSeriesSamples times. Its goroutine is owned by stop.
type rxSeries struct {
	step      time.Duration
	delivered func() uint64 // the receiver's deliveries so far
	first     chan struct{} // closed by arrived, once
	firstOnce sync.Once
	firstAt   time.Time // written before first closes
	done      chan struct{}
	finished  chan struct{}
	stopOnce  sync.Once
	samples   []RecvSample // the goroutine's until finished closes
	full      bool         // samples reached MaxSeriesSamples before stop
}

// startRxSeries starts sampling rx every step; rx.onFirstData must call arrived. It
// returns nil for step 0.
func startRxSeries(rx *streamRx, step time.Duration) *rxSeries {
	if step <= 0 {
		return nil
	}
	s := &rxSeries{step: step, delivered: rx.deliveredNow, first: make(chan struct{}), done: make(chan struct{}), finished: make(chan struct{})}
	go s.run()
	return s
}

// arrived marks the first data arrival: the time line's zero.
func (s *rxSeries) arrived() {
	s.firstOnce.Do(func() {
		s.firstAt = time.Now()
		close(s.first)
	})
}

func (s *rxSeries) run() {
	defer close(s.finished)
	select {
	case <-s.first:
	case <-s.done:
		return
	}
	tick := time.NewTicker(s.step)
	defer tick.Stop()
	for {
		if s.sample() {
			return
		}
		select {
		case <-s.done:
			s.sample() // the final count
			return
		case <-tick.C:
		}
	}
}

// sample appends one point; it reports true when the time line is full.
func (s *rxSeries) sample() (full bool) {
	if len(s.samples) >= MaxSeriesSamples {
		s.full = true
		return true
	}
	s.samples = append(s.samples, RecvSample{TS: report.Round3(time.Since(s.firstAt).Seconds()), RecvMsgs: s.delivered()})
	return false
}

// stop ends the sampling, waits for it and returns the time line, with a warning
// when it was cut short. Later calls return nothing.
func (s *rxSeries) stop() (out []RecvSample, warns []string) {
	if s == nil {
		return nil, nil
	}
	s.stopOnce.Do(func() {
		close(s.done)
		<-s.finished
		out = s.samples
		if s.full {
			warns = append(warns, fmt.Sprintf("series: cut at %d samples (every %v)", MaxSeriesSamples, s.step))
		}
	})
	return out, warns
}

// sampleLog is a time line one goroutine samples while others read it: a stream
// receiver's, or this host's half of a far one.
type sampleLog struct {
	mu      sync.Mutex // guards samples
	samples []report.Sample
}

func (sl *sampleLog) add(s report.Sample) {
	sl.mu.Lock()
	sl.samples = append(sl.samples, s)
	sl.mu.Unlock()
}

// result is a copy of the samples so far.
func (sl *sampleLog) result() []report.Sample {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return append([]report.Sample(nil), sl.samples...)
}

// seriesAlignWarning says how a merged time line's two clocks meet.
const seriesAlignWarning = "series: sent counts are this host's and delivered counts the far end's, two clocks aligned at the first data message " +
	"(its send here, its arrival there): deliveries read up to one one-way delay early"

// mergeSeries joins this host's sent time line (TS from the first data send) with
// the far receiver's delivered one (TS from the first data arrival), taking both
// zeros as one instant. Each of this host's points gets the deliveries at its time,
// linear between the far points (the last far count after them); the far points
// past this host's last follow with the final sent count, so the time line shows the
// receiver's tail. Deliveries never exceed the sent count of the same point: where
// they would, the clocks' offset (one one-way delay) put them there, and the point
// says the sent count.
func mergeSeries(sent []report.Sample, far []RecvSample) []report.Sample {
	out := make([]report.Sample, 0, len(sent)+len(far))
	var last report.Sample
	for _, s := range sent {
		s.RecvMsgs = min(recvAt(far, s.TS), s.SentMsgs)
		out = append(out, s)
		last = s
	}
	for _, f := range far {
		if len(out) == 0 || f.TS > last.TS {
			out = append(out, report.Sample{TS: f.TS, SentMsgs: last.SentMsgs, RecvMsgs: min(f.RecvMsgs, last.SentMsgs)})
		}
	}
	return out
}

// recvAt is the far time line's deliveries at t seconds: linear between the points
// around t, the first point's before it, the last point's after it, 0 for none.
func recvAt(far []RecvSample, t float64) uint64 {
	if len(far) == 0 {
		return 0
	}
	if t <= far[0].TS {
		return far[0].RecvMsgs
	}
	for i := 1; i < len(far); i++ {
		a, b := far[i-1], far[i]
		if t > b.TS {
			continue
		}
		if b.TS <= a.TS || b.RecvMsgs < a.RecvMsgs {
			return b.RecvMsgs
		}
		frac := (t - a.TS) / (b.TS - a.TS)
		return a.RecvMsgs + uint64(frac*float64(b.RecvMsgs-a.RecvMsgs)+0.5)
	}
	return far[len(far)-1].RecvMsgs
}
