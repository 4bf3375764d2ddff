package bench

import (
	"cmp"
	"context"

	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// An outcome is what one cell measured.
type outcome struct {
	m        report.Metrics
	warns    []string
	observed map[string]any    // Result.Observed
	series   []report.Sample   // Result.Series
	lines    []report.Timeline // Result.Timelines
	injected *report.Injected  // Result.Injected: set by the runner in lab runs
}

// An experimentFunc runs one cell: one experiment, one transport, one set of params.
// An error means no figures.
type experimentFunc func(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error)

// metricsOnly adapts an experiment that measures only Metrics.
func metricsOnly(f func(context.Context, *runEnv, transport.Network, report.Params) (report.Metrics, []string, error)) experimentFunc {
	return func(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
		m, w, err := f(ctx, e, nw, p)
		return outcome{m: m, warns: w}, err
	}
}

// runEnv is what every cell of one run shares.
type runEnv struct {
	epoch    time.Time // send times are ns since epoch, on the monotonic clock
	run      uint64    // run id carried in every header
	seed     int64     // payload seed
	address  string    // where the server end listens, host:port
	warmup   time.Duration
	drain    time.Duration
	timeout  time.Duration
	batch    int                  // most messages per Send/Recv call
	verify   wire.Verify          // what receivers check of each message (--verify)
	lab      *lab.Lab             // the emulated link, in lab runs; nil on loopback
	linkRate float64              // the emulated link's rate, client to server, bits/s; 0 = unlimited or no lab
	linkIdle time.Duration        // the longest wait for the emulated link to be idle at a cell's edges
	far      Far                  // where server halves run in remote mode; nil = in this process
	farDone  *farFinishes         // the running cell's far halves, as they finished (openFar); set per cell by runCell
	net      transport.NetOptions // the run's socket flags, for far ends (openFar)
	rx       *rxModes             // how the cells' ends received, for env.sockets (one host); nil = not recorded

	// onMeasured, when set (lab cells), is told where an experiment's measured phase
	// starts (end false: after its warm-up) and ends (end true: after its drain), so
	// that the link's figures cover that phase only. May be called concurrently.
	onMeasured func(end bool)
}

// rxModes records, by transport, how the ends of the cells on this host received
// (Sock.Rx): the mode of each end, by experiment.
type rxModes struct {
	mu sync.Mutex
	by map[string]*report.Sock // by transport; guarded by mu
}

// note records that a cell of exp over transport tr received in client mode on the
// client's end and server on the server's ("" = unknown, not recorded). Equal modes
// are one; different ones read "client M, server M".
func (r *rxModes) note(tr, exp, client, server string) {
	if r == nil || (client == "" && server == "") {
		return
	}
	mode := client
	if client != server {
		mode = fmt.Sprintf("client %s, server %s", cmp.Or(client, "unknown"), cmp.Or(server, "unknown"))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = make(map[string]*report.Sock)
	}
	sk := r.by[tr]
	if sk == nil {
		sk = &report.Sock{}
		r.by[tr] = sk
	}
	if old, ok := sk.Rx[exp]; ok && old != mode {
		mode = old + "; " + mode
	}
	if sk.Rx == nil {
		sk.Rx = make(map[string]string)
	}
	sk.Rx[exp] = mode
}

// addTo writes what r recorded into socks' Rx, by transport.
func (r *rxModes) addTo(socks map[string]report.Sock) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for tr, sk := range r.by {
		s := socks[tr]
		s.Rx = maps.Clone(sk.Rx)
		socks[tr] = s
	}
}

// markMeasured tells the runner that the measured phase starts (end false) or has
// ended (end true).
func (e *runEnv) markMeasured(end bool) {
	if e.onMeasured != nil {
		e.onMeasured(end)
	}
}

// propertySize is the message size, in bytes, of the property experiments: they show
// behaviour, not a size sweep.
const propertySize = 1024

// cellLimit bounds one cell's run time, whatever happens: the duration with warm-up
// and drain plus a grace period, or maxCountCell in count mode.
func (e *runEnv) cellLimit(p report.Params) time.Duration {
	if p.Count > 0 {
		return maxCountCell
	}
	return e.warmup + time.Duration(p.DurationS*float64(time.Second)) + e.drain + 30*time.Second
}

// maxCountCell bounds a cell run with --count.
const maxCountCell = 10 * time.Minute

// now is the monotonic time since the run's epoch, in ns.
func (e *runEnv) now() int64 { return int64(time.Since(e.epoch)) }

// pollInterval bounds every blocking Recv, so loops notice cancellation.
const pollInterval = 50 * time.Millisecond

// isClosed reports whether err means the endpoint or its peer is gone.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// isDatagramRefusal reports whether a send error refused one datagram but leaves the
// socket usable: the kernel had no buffer, or ICMP said nobody listens. A stream
// transport never returns these mid-stream.
func isDatagramRefusal(err error) bool {
	return errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EHOSTUNREACH)
}

// server accepts endpoints and runs serve on each, until stop. It owns every
// goroutine it starts: stop returns only when all have returned.
type server struct {
	l        transport.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error // set by stop

	mu      sync.Mutex                       // guards conns, errs, sockets, rx
	conns   map[transport.Transport]struct{} // endpoints being served
	errs    []error
	sockets int    // endpoints Accept returned
	rx      string // how the first endpoint Accept returned receives (RecvModeOf); "" = none yet
}

// startServer listens on e.address and serves every accepted endpoint with serve.
// serve must return when its Transport is closed.
func startServer(ctx context.Context, e *runEnv, nw transport.Network, serve func(ctx context.Context, t transport.Transport) error) (*server, error) {
	l, err := nw.Listen(ctx, e.address)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", nw.Name(), e.address, err)
	}
	return serveListener(ctx, l, transport.CapsOf(nw.Name()).Connected, serve), nil
}

// serveListener serves every endpoint l accepts with serve, each on a goroutine of
// its own, until stop: the one accept loop of every server half, whether its
// listener is this process's (startServer) or a far end's new clients
// (ListenEnv.Clients). A connectionless listener's (not connected) first endpoint
// serves every client, so the loop ends there, as later Accepts would only wait. An
// Accept that fails for another reason than the listener's close or ctx's end is
// stop's error.
func serveListener(ctx context.Context, l transport.Listener, connected bool, serve func(ctx context.Context, t transport.Transport) error) *server {
	ctx, cancel := context.WithCancel(ctx)
	s := &server{l: l, cancel: cancel, conns: make(map[transport.Transport]struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			t, err := l.Accept(ctx)
			if err != nil {
				if ctx.Err() == nil && !isClosed(err) {
					s.mu.Lock()
					s.errs = append(s.errs, fmt.Errorf("accept: %w", err))
					s.mu.Unlock()
				}
				return // closed or cancelled: stop says why it stopped
			}
			s.mu.Lock()
			s.conns[t] = struct{}{}
			s.sockets++
			if s.rx == "" {
				s.rx = transport.RecvModeOf(t)
			}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				err := serve(ctx, t)
				t.Close() // a serve that gave up must not leave its peer blocked
				s.mu.Lock()
				delete(s.conns, t)
				if err != nil && !isClosed(err) && ctx.Err() == nil {
					s.errs = append(s.errs, err)
				}
				s.mu.Unlock()
			}()
			if !connected {
				return
			}
		}
	}()
	return s
}

// addr is the address clients dial.
func (s *server) addr() string { return s.l.Addr().String() }

// closeListener closes the listener only: a TCP server stops accepting while the
// connections it accepted go on; a UDP server's one socket is its listener.
func (s *server) closeListener() error { return s.l.Close() }

// acceptedCount is how many endpoints Accept has returned.
func (s *server) acceptedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sockets
}

// recvMode is how the server's first endpoint received ("" before one was accepted).
func (s *server) recvMode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx
}

// endpoints returns the endpoints accepted so far.
func (s *server) endpoints() []transport.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := make([]transport.Transport, 0, len(s.conns))
	for t := range s.conns {
		ts = append(ts, t)
	}
	return ts
}

// stop closes the listener and every accepted endpoint, waits for every goroutine,
// and returns the first error a serve returned. Later calls return the same.
func (s *server) stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown() })
	return s.stopErr
}

func (s *server) shutdown() error {
	s.cancel()
	s.l.Close()
	for _, t := range s.endpoints() {
		t.Close()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		return s.errs[0]
	}
	return nil
}

// finishRequests fills in the figures pingpong and connect derive the same way from
// their counts, the latency histogram and the measured interval.
func finishRequests(m *report.Metrics, lat *metrics.Latency, size int, elapsed time.Duration) {
	m.SentBytes = m.SentMsgs * uint64(size)
	m.RecvBytes = m.RecvMsgs * uint64(size)
	m.LostMsgs = m.Timeouts
	m.RTT = lat.Stats()
	m.SendIntervalS = elapsed.Seconds()
	m.RecvIntervalS = elapsed.Seconds()
	if elapsed > 0 {
		m.MsgsPerS = float64(m.RecvMsgs) / elapsed.Seconds()
		m.TransPerS = m.MsgsPerS
		m.GoodputBps = float64(m.RecvBytes) * 8 / elapsed.Seconds()
		m.SendMsgsPerS = float64(m.SentMsgs) / elapsed.Seconds()
		m.SendRateBps = float64(m.SentBytes) * 8 / elapsed.Seconds()
	}
}

// serveMessages is the loop of every request/response server half (ServeEcho, and
// close's and refused's far halves): it reads up to batch messages of at most size
// bytes at a time from t (16 KiB of buffers at most: servers of many clients stay
// lean) and hands each to handle, which returns the reply to send (nil: none; it
// may be msg, rewritten in place) and whether the half stops after it; the batch's
// replies go out in one Send. A datagram refusal (ICMP from a client that went) is
// no error. It returns when ctx ends or t is closed (stopped false), or once a
// handler stopped it (stopped true, the rest of that batch dropped unanswered).
func serveMessages(ctx context.Context, t transport.Transport, batch, size int, handle func(msg []byte) (reply []byte, stop bool)) (stopped bool, err error) {
	batch = max(1, min(batch, (16<<10)/size))
	bufs, sizes, out := makeBufs(batch, size), make([]int, batch), make([][]byte, batch)
	for ctx.Err() == nil {
		if err := t.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return false, err
		}
		n, err := t.Recv(bufs, sizes)
		k := 0
		for i := 0; i < n && !stopped; i++ {
			var reply []byte
			if reply, stopped = handle(bufs[i][:sizes[i]]); reply != nil {
				out[k] = reply
				k++
			}
		}
		if k > 0 {
			if _, serr := t.Send(out[:k]); serr != nil && !isDatagramRefusal(serr) {
				return stopped, serr
			}
		}
		switch {
		case stopped:
			return true, nil
		case err == nil || transport.IsTimeout(err) || isDatagramRefusal(err):
		case isClosed(err):
			return false, nil
		default:
			return false, err
		}
	}
	return false, nil
}

// makeBufs returns n buffers of size bytes each, carved from one allocation.
func makeBufs(n, size int) [][]byte {
	backing := make([]byte, n*size)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = backing[i*size : (i+1)*size : (i+1)*size]
	}
	return bufs
}

// retransmits sums TCP_INFO total_retrans over the transports that can report it;
// ok is false when none can.
func retransmits(ts []transport.Transport) (total uint64, ok bool) {
	for _, t := range ts {
		if ti, is := t.(transport.TCPInfoer); is {
			if info, err := ti.TCPInfo(); err == nil {
				total += uint64(info.TotalRetrans)
				ok = true
			}
		}
	}
	return total, ok
}

// recvDrops sums the receive-buffer drop counters of the transports that can report
// them; ok is false when none can.
func recvDrops(ts []transport.Transport) (total uint64, ok bool) {
	for _, t := range ts {
		if rd, is := t.(transport.RecvDropper); is {
			if d, err := rd.RecvDrops(); err == nil {
				total += d
				ok = true
			}
		}
	}
	return total, ok
}

func u64p(v uint64) *uint64    { return &v }
func f64p(v float64) *float64  { return &v }
func seconds(ns int64) float64 { return float64(ns) / 1e9 }
