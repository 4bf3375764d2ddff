package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpClients,
		section: report.Section{Title: "Many clients (clients)", Layout: report.LayoutTable, Params: []string{report.ParamClients}},
		help:    "--clients concurrent clients: server sockets, file descriptors and kernel memory per client (TCP: one each; UDP: one for all)",
		place:   30, run: runClients, requestResponse: true,
		properties: []report.Rule{report.RuleSockets},
		far:        &FarHalf{OnePath: true, Listen: true, Serve: serveClients}})
}

// clientsMaxS caps the traffic phase of clients in duration mode, in seconds: the
// figures that make the point are counts (sockets, descriptors, bytes per client),
// which do not grow with time, and the default suite must stay short.
const clientsMaxS = 1.0

// runClients shows that every TCP client costs the server a socket of its own, while
// one UDP socket serves them all. p.Clients clients dial one echo server and each
// does closed-loop request/response round trips of p.Size bytes (a request
// unanswered within e.timeout counts as unanswered, never a stall) for min(p.DurationS, 1 s), or
// p.Count round trips each.
//
// The server half (serveClients, the same here and at a far end) reads the footprint
// twice: once its listener is open and before it takes a client, and after the
// traffic with every client still connected and idle. Between the two the process
// gained what the server needed for its clients (TCP: a socket each; UDP: nothing,
// its one socket is the listener) and the clients' sockets, one descriptor per client
// for every transport, so the server's descriptors are the difference less one per
// client.
// The other figures cover both ends, which share this process and this kernel: Go
// heap; the namespace's sockets and socket buffer memory
// (/proc/net/sockstat; near zero for idle sockets, and moved in per-CPU batches);
// and the slab memory of socket objects (/proc/slabinfo, root only), where a TCP
// client costs two sockets and a UDP client one. Each per-client figure is the
// difference divided by p.Clients.
//
// Against a far end (remote mode) the clients run here and the server there, in
// listen mode: the far end reads its own footprint before its first client and
// again once this side is done with every client still connected, so the figures
// are the server's alone (footprint_of says so), on its own kernel.
func runClients(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	n := p.Clients
	if n < 1 {
		return outcome{}, fmt.Errorf("clients: need at least 1 client, got %d", n)
	}
	var warns []string
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()

	lat := metrics.NewLatency() // before the baseline: it is not a per-client cost
	srv, err := openClientsPeer(ctx, e, nw, p)
	if err != nil {
		return outcome{}, err
	}
	defer srv.finish(context.WithoutCancel(ctx))
	conns := make([]transport.Transport, 0, n)
	defer func() { // runs before srv.close
		for _, t := range conns {
			t.Close()
		}
	}()
	for i := 0; i < n; i++ {
		t, err := srv.dial(ctx)
		if err != nil {
			return outcome{}, fmt.Errorf("client %d: dial: %w", i, err)
		}
		conns = append(conns, t)
	}
	// From here on, every blocking call ends by the cell's time limit.
	stopWatch := ctxwatch.OnDone(ctx, func() {
		for _, t := range conns {
			t.Close()
		}
	})
	defer stopWatch()

	reqs := make([]*requester, n)
	for i := range reqs {
		reqs[i] = newRequester(e, p.Size)
	}
	// One round trip each before measuring: a TCP reply proves its connection was
	// accepted, and every path is warm.
	if err := forEachClient(ctx, conns, func(ctx context.Context, i int) error {
		var warm report.Metrics
		return reqs[i].roundTrip(conns[i], wire.KindWarmup, &warm, nil, -1)
	}); err != nil {
		return outcome{}, fmt.Errorf("warm-up: %w", err)
	}

	u0, uerr := metrics.ReadUsage()
	drops0, _ := srv.drops()
	per := make([]report.Metrics, n)
	var latMu sync.Mutex // guards lat while clients run
	var until time.Time
	if p.Count == 0 {
		until = time.Now().Add(time.Duration(min(p.DurationS, clientsMaxS) * float64(time.Second)))
	}
	start := time.Now()
	err = forEachClient(ctx, conns, func(ctx context.Context, i int) error {
		m := &per[i]
		for k := uint64(0); ctx.Err() == nil; k++ {
			if p.Count > 0 && k >= p.Count || p.Count == 0 && !time.Now().Before(until) {
				return nil
			}
			from, got := e.now(), m.RecvMsgs
			if err := reqs[i].roundTrip(conns[i], wire.KindRequest, m, nil, from); err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			if m.RecvMsgs > got {
				rtt := e.now() - from
				latMu.Lock()
				lat.Record(rtt)
				latMu.Unlock()
			}
		}
		return ctx.Err()
	})
	elapsed := time.Since(start)
	if err != nil {
		return outcome{}, err
	}
	u1, _ := metrics.ReadUsage()
	drops1, dropsOK := srv.drops()

	// Every client connected and idle: the moment the footprint is read.
	// On one host the clients' descriptors are this process's too, one each.
	fr := srv.finish(ctx)
	sockets, clientFDs := fr.ServerSockets, 0
	if srv.local != nil {
		clientFDs = n
	}
	warns = append(warns, fr.Warnings...)
	fp := FootprintDelta{Errors: []string{"the far end reported no footprint"}}
	if fr.Footprint != nil {
		fp = *fr.Footprint
	}

	var m report.Metrics
	for i := range per {
		addRequestCounts(&m, &per[i])
	}
	finishRequests(&m, lat, p.Size, elapsed)
	if dropsOK {
		m.DropsSocket = u64p(drops1 - drops0)
	}
	if uerr == nil {
		metrics.SetUsage(&m, u1.Sub(u0), m.SentBytes+m.RecvBytes)
	}
	m.ServerSockets = sockets
	m.ServerCPUSec = fr.CPUSec
	if m.Timeouts > 0 {
		warns = append(warns, fmt.Sprintf("%d of %d requests unanswered within %v", m.Timeouts, m.SentMsgs, e.timeout))
	}

	obs := map[string]any{
		report.ObsClients.Key():       n,
		report.ObsServerSockets.Key(): sockets,
		report.ObsRequestsPerS.Key():  m.TransPerS,
		report.ObsMeasuredS.Key():     elapsed.Seconds(),
	}
	if e.far != nil {
		report.Set(obs, report.ObsFootprintOf, "the server's process and kernel (where the server shares a kernel with this host, its socket counts include the clients')")
	}
	if m.RTT != nil {
		if m.RTT.P50 != nil {
			report.Set(obs, report.ObsRTTP50Ns, *m.RTT.P50)
		}
		if m.RTT.P99 != nil {
			report.Set(obs, report.ObsRTTP99Ns, *m.RTT.P99)
		}
	}
	fp.observe(obs, n, clientFDs)
	warns = append(warns, fp.Errors...)
	return outcome{m: m, warns: warns, observed: obs}, nil
}

// forEachClient runs f for every client at once, each in its own goroutine, and
// waits for all of them; the first error cancels the others' ctx.
func forEachClient(ctx context.Context, conns []transport.Transport, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for i := range conns {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}

// addRequestCounts adds the counts one requester kept in src to dst.
func addRequestCounts(dst, src *report.Metrics) {
	dst.SentMsgs += src.SentMsgs
	dst.RecvMsgs += src.RecvMsgs
	dst.Timeouts += src.Timeouts
	dst.DropsSender += src.DropsSender
	dst.LateMsgs += src.LateMsgs
	dst.CorruptMsgs += src.CorruptMsgs
	dst.ForeignMsgs += src.ForeignMsgs
	dst.MalformedMsgs += src.MalformedMsgs
}

// settleSockets waits, up to half a second, until the namespace's socket count has
// held still for 30 ms: the kernel frees closed sockets (a previous cell's) after
// RCU grace periods, and those frees would be counted against this cell.
func settleSockets(ctx context.Context) {
	const (
		step  = 10 * time.Millisecond
		still = 3 // readings in a row
		limit = 500 * time.Millisecond
	)
	deadline := time.Now().Add(limit)
	last, same := int64(-1), 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := readSockstat()
		if err != nil {
			return
		}
		used := s.get("sockets", "used")
		if used == last {
			if same++; same >= still {
				return
			}
		} else {
			last, same = used, 0
		}
		time.Sleep(step)
	}
}

// footprint is what the process and the kernel hold at one moment.
type footprint struct {
	fds        int              // open descriptors of the process; 0 when unknown
	sock       sockstat         // the namespace's socket counters; nil when unknown
	slab       map[string]int64 // kernel slab caches, bytes in use; nil when unknown
	heapInuse  uint64           // Go heap spans in use after a GC, bytes
	goroutines int
}

// readFootprint collects garbage, then reads the footprint. What it could not read
// is left zero and said in errs.
func readFootprint() (fp footprint, errs []error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fp.heapInuse = ms.HeapInuse
	fp.goroutines = runtime.NumGoroutine()
	var err error
	if fp.fds, err = countFDs(); err != nil {
		errs = append(errs, err)
	}
	if fp.sock, err = readSockstat(); err != nil {
		errs = append(errs, err)
	}
	if fp.slab, err = readSlab(); err != nil {
		errs = append(errs, err)
	}
	return fp, errs
}

// sockstat holds /proc/net/sockstat: per line ("TCP", "UDP", "sockets", ...), each
// field's value ("inuse", "mem", ...). mem fields count pages.
type sockstat map[string]map[string]int64

// get returns one field, 0 if absent.
func (s sockstat) get(proto, field string) int64 { return s[proto][field] }

// socketMemPages is the memory the kernel accounts to TCP and UDP sockets, in pages:
// the "mem" fields of TCP, UDP and UDPLITE (IPv6 sockets are counted there too). The
// kernel moves it in per-CPU batches of up to 1 MiB, so small differences are noise.
func (s sockstat) socketMemPages() int64 {
	return s.get("TCP", "mem") + s.get("UDP", "mem") + s.get("UDPLITE", "mem")
}

// parseSockstat reads the format of /proc/net/sockstat: lines "NAME: key value key
// value ...".
func parseSockstat(r io.Reader) (sockstat, error) {
	s := sockstat{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %q: want key value pairs", sc.Text())
		}
		kv := make(map[string]int64, len(f)/2)
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %q: %s: %w", sc.Text(), f[i], err)
			}
			kv[f[i]] = v
		}
		s[strings.TrimSpace(name)] = kv
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("no counters")
	}
	return s, nil
}

// socketSlabCaches are the slab caches that hold sockets: the protocols' socket
// objects and the inodes every socket has.
var socketSlabCaches = []string{"TCP", "TCPv6", "UDP", "UDPv6", "UDPLITE", "UDPLITEv6", "sock_inode_cache"}

// socketSlabBytes is the kernel memory socket objects take, in bytes. SLUB counts
// objects in use per slab, so the figure is exact to a few slabs per CPU.
func socketSlabBytes(slab map[string]int64) int64 {
	var b int64
	for _, c := range socketSlabCaches {
		b += slab[c]
	}
	return b
}

// parseSlabinfo reads the format of /proc/slabinfo 2.x: after the header lines,
// "name active_objs num_objs objsize ...". It returns active_objs × objsize per cache.
func parseSlabinfo(r io.Reader) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "slabinfo") || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, fmt.Errorf("line %q: want name active_objs num_objs objsize", line)
		}
		active, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %q: active_objs or objsize not a number", line)
		}
		out[f[0]] += active * size
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no caches")
	}
	return out, nil
}
