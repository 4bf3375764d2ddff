package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// FootprintDelta is what a server's process and kernel gained while its clients
// connected: on one host both ends share them; at a far end only the server's
// half is counted. It travels from the far end as JSON.
type FootprintDelta struct {
	FDs                  *int     `json:"fds,omitempty"`                     // open descriptors of the process
	Goroutines           int      `json:"goroutines"`                        // Go goroutines
	HeapBytes            int64    `json:"heap_bytes"`                        // Go heap in use after a GC
	KernelSockets        *int64   `json:"kernel_sockets,omitempty"`          // the namespace's sockets in use (/proc/net/sockstat)
	KernelSocketMemPages *int64   `json:"kernel_socket_mem_pages,omitempty"` // TCP and UDP socket memory, pages
	SlabBytes            *int64   `json:"slab_bytes,omitempty"`              // socket objects' slab memory (/proc/slabinfo, root only)
	Errors               []string `json:"errors,omitempty"`                  // what could not be read
}

// diffFootprint is fp1 less fp0; errs say what could not be read.
func diffFootprint(fp0, fp1 footprint, errs []error) FootprintDelta {
	d := FootprintDelta{Goroutines: fp1.goroutines - fp0.goroutines, HeapBytes: int64(fp1.heapInuse) - int64(fp0.heapInuse)}
	if fp0.fds > 0 && fp1.fds > 0 {
		d.FDs = intp(fp1.fds - fp0.fds)
	}
	if fp0.sock != nil && fp1.sock != nil {
		used := fp1.sock.get("sockets", "used") - fp0.sock.get("sockets", "used")
		pages := fp1.sock.socketMemPages() - fp0.sock.socketMemPages()
		d.KernelSockets, d.KernelSocketMemPages = &used, &pages
	}
	if fp0.slab != nil && fp1.slab != nil {
		slab := socketSlabBytes(fp1.slab) - socketSlabBytes(fp0.slab)
		d.SlabBytes = &slab
	}
	seen := map[string]bool{}
	for _, err := range errs { // both readings fail alike: say it once
		if w := err.Error(); !seen[w] {
			seen[w] = true
			d.Errors = append(d.Errors, w)
		}
	}
	return d
}

func intp(v int) *int { return &v }

// answered reports whether a request on t was answered within tries attempts of
// e.timeout each.
func answered(ctx context.Context, e *runEnv, t transport.Transport, size, tries int) bool {
	r := newRequester(e, size)
	var m report.Metrics
	for range tries {
		if err := r.roundTrip(t, wire.KindWarmup, &m, nil, -1); err != nil || ctx.Err() != nil {
			return false
		}
		if m.RecvMsgs > 0 {
			return true
		}
	}
	return false
}

// observe adds the footprint's per-client figures to obs, for n clients of which
// clientFDs descriptors are the clients' own.
func (d FootprintDelta) observe(obs map[string]any, n, clientFDs int) {
	report.Set(obs, report.ObsServerGoroutines, d.Goroutines)
	report.Set(obs, report.ObsHeapBytesPerClient, float64(d.HeapBytes)/float64(n))
	if d.FDs != nil {
		report.Set(obs, report.ObsProcessFDsDelta, *d.FDs)
		report.Set(obs, report.ObsClientFDs, clientFDs)
		report.Set(obs, report.ObsServerFDs, *d.FDs-clientFDs)
		report.Set(obs, report.ObsServerFDsPerClient, float64(*d.FDs-clientFDs)/float64(n))
	}
	if d.KernelSockets != nil && d.KernelSocketMemPages != nil {
		report.Set(obs, report.ObsKernelSocketsDelta, *d.KernelSockets)
		report.Set(obs, report.ObsKernelSocketMemPagesDelta, *d.KernelSocketMemPages)
		report.Set(obs, report.ObsKernelSocketBytesPerClient, float64(max(*d.KernelSocketMemPages, 0)*int64(os.Getpagesize()))/float64(n))
	}
	if d.SlabBytes != nil {
		report.Set(obs, report.ObsKernelSocketSlabBytesPerClient, float64(*d.SlabBytes)/float64(n))
	}
}

// StartFootprint reads this process's and kernel's footprint once the namespace's
// socket count has settled, and returns the function that reads it again and says
// what was gained: the far end's half of a clients cell.
func StartFootprint(ctx context.Context) func() FootprintDelta {
	settleSockets(ctx)
	fp0, errs0 := readFootprint()
	return func() FootprintDelta {
		fp1, errs1 := readFootprint()
		return diffFootprint(fp0, fp1, append(errs0, errs1...))
	}
}

// maxFarClients is the most clients a far end takes at once (remote's listen mode
// keeps at most 1024 TCP connections of a test open).
const maxFarClients = 1024

// serveClients is clients' server half, here or at a far end: an echo for every new
// client, the footprint read before the first and again with all connected.
var serveClients = serveListen(true)

// openClientsPeer starts the echo server half of a clients cell in listen mode, the
// footprint's baseline read before it serves (at a far end, by the far end: it
// answers on its own data path once it has, and the clients dial after).
func openClientsPeer(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (*reqPeer, error) {
	if e.far != nil && p.Clients > maxFarClients {
		return nil, fmt.Errorf("--clients: at most %d against a remote server (the clients it keeps open at once), got %d", maxFarClients, p.Clients)
	}
	dur := e.warmup + time.Duration(min(p.DurationS, clientsMaxS)*float64(time.Second)) + 5*time.Second // dialing and warm-up round trips too
	if p.Count > 0 {
		dur = 0
	}
	rp, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpClients, Transport: nw.Name(), Size: p.Size, Streams: 1, Duration: dur, Listen: true}, serverHalf{half: serveClients})
	if err != nil {
		return nil, err
	}
	if rp.t != nil && !answered(ctx, e, rp.t, p.Size, 10) {
		rp.finish(ctx)
		return nil, errors.New("far end: no answer on its data path (it answers once its footprint's baseline is read)")
	}
	return rp, nil
}
