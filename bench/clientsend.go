package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// clientsEnd is the server half of a clients cell, seen from the clients: an echo
// server in this process, or a far end that keeps taking new clients (FarSpec.Listen)
// and measures its own footprint.
type clientsEnd struct {
	dial func(ctx context.Context) (Transport, error) // a new client's endpoint
	// drops is the server endpoints' receive-buffer drops so far; ok false when
	// unknown (a far end).
	drops func() (uint64, bool)
	// footprint is called with every client connected and idle: what the server
	// gained since before its first client, the server endpoints its clients
	// needed, and its warnings. clientFDs is how many of the descriptors are the
	// clients' (this process holds both ends on one host; none across hosts).
	footprint func(ctx context.Context) (d FootprintDelta, clientFDs, sockets int, warns []string, serverCPU *float64)
	close     func()
}

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
func answered(ctx context.Context, e *runEnv, t Transport, size, tries int) bool {
	r := newRequester(e, size)
	var m report.Metrics
	for range tries {
		if err := r.roundTrip(t, KindWarmup, &m, nil, -1); err != nil || ctx.Err() != nil {
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

// openClientsLocal starts the echo server in this process, the footprint's
// baseline read first.
func openClientsLocal(ctx context.Context, e *runEnv, nw Network, p report.Params) (*clientsEnd, error) {
	// The runtime's poller opens its own descriptors on first network use: open and
	// close one endpoint first, so the baseline already has them.
	if l, err := nw.Listen(ctx, e.address); err == nil {
		l.Close()
	}
	settleSockets(ctx)
	fp0, fpErrs := readFootprint()
	srv, err := startEchoServer(ctx, e, nw, p.Size)
	if err != nil {
		return nil, err
	}
	addr := srv.addr()
	return &clientsEnd{
		dial:  func(ctx context.Context) (Transport, error) { return nw.Dial(ctx, addr) },
		drops: func() (uint64, bool) { return recvDrops(srv.endpoints()) },
		footprint: func(context.Context) (FootprintDelta, int, int, []string, *float64) {
			sockets := srv.acceptedCount()
			fp1, errs1 := readFootprint()
			return diffFootprint(fp0, fp1, append(fpErrs, errs1...)), p.Clients, sockets, nil, nil
		},
		close: func() { srv.stop() },
	}, nil
}

// maxFarClients is the most clients a far end takes at once (remote's listen mode
// keeps at most 1024 TCP connections of a test open).
const maxFarClients = 1024

// openClientsFar asks the far end for a listen-mode cell; it reads its own
// footprint before its first client, and again when this side finishes with every
// client still connected.
func openClientsFar(ctx context.Context, e *runEnv, nw Network, p report.Params) (*clientsEnd, error) {
	if p.Clients > maxFarClients {
		return nil, fmt.Errorf("--clients: at most %d against a remote server (the clients it keeps open at once), got %d", maxFarClients, p.Clients)
	}
	dur := e.warmup + time.Duration(min(p.DurationS, clientsMaxS)*float64(time.Second)) + 5*time.Second // dialing and warm-up round trips too
	if p.Count > 0 {
		dur = 0
	}
	fl, err := openFarListen(ctx, e, report.ExpClients, nw, p.Size, dur)
	if err != nil {
		return nil, err
	}
	// The far end answers on its data path once it has read its baseline: the
	// clients dial after.
	if !answered(ctx, e, fl.fc.Transports()[0], p.Size, 10) {
		fl.finish(ctx)
		return nil, errors.New("far end: no answer on its data path (it answers once its footprint's baseline is read)")
	}
	return &clientsEnd{
		dial:  fl.dial,
		drops: func() (uint64, bool) { return 0, false },
		footprint: func(ctx context.Context) (FootprintDelta, int, int, []string, *float64) {
			r := fl.finish(ctx)
			if r.Footprint == nil {
				return FootprintDelta{Errors: []string{"the far end reported no footprint"}}, 0, r.ServerSockets, r.Warnings, r.CPUSec
			}
			return *r.Footprint, 0, r.ServerSockets, r.Warnings, r.CPUSec
		},
		close: func() { fl.finish(context.Background()) },
	}, nil
}
