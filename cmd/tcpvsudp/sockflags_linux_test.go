package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// TestRunServerSocketFlags: the socket flags reach both ends of a remote data path.
// 'tcpvsudp run --server' with --rcvbuf 1M --no-gso --batch 1, across a veth pair,
// streams both ways (--bidir, --count, no warm-up), so that each end sends. The
// report's env.sockets (this host) and env.peer.sockets (the server) must hold what
// the kernel says of those very sockets, asked from outside the tool:
//   - the receive buffer of every data socket of each end, as ss -m reads it from the
//     kernel while the run goes on (rb), and as the kernel's rule gives it:
//     2 × min(1 MiB, net.core.rmem_max);
//   - each end's UDP sends: one datagram per send call, exactly the count (the known
//     answer of a stream cell without warm-up: end of stream is not a datagram); as many calls as
//     the kernel counted sendmmsg(2) calls of the end's process (perf stat on the
//     syscall tracepoint, where perf can); and as many datagrams as the kernel
//     counted leaving the end's namespace (Udp: OutDatagrams), but for the setup's
//     probes or challenges, one or a few per socket.
func TestRunServerSocketFlags(t *testing.T) {
	const count = 500
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	// Linux doubles a request, capped at the namespace's net.core.rmem_max.
	rmemMax := map[string]int{"client": readSysctlIn(t, p.InClient, "net/core/rmem_max"), "server": readSysctlIn(t, p.InServer, "net/core/rmem_max")}

	outBefore := map[string]uint64{"client": udpSNMPIn(t, p.InClient)["OutDatagrams"], "server": udpSNMPIn(t, p.InServer)["OutDatagrams"]}
	ssw := watchSockets(t, p, cs.port(t))
	perfOK := perfCounts(t)
	var serverCalls func() (uint64, error)
	if perfOK {
		serverCalls = perfAttach(t, cs.cmd.Process.Pid)
	}
	rep, clientCalls := runInCounted(t, p, cs, perfOK, "--server", addr, "--key-file", key, "-e", "stream", "--bidir", "-t", "tcp,udp",
		"--count", strconv.Itoa(count), "--rate", "10M", "--sizes", "1024", "--warmup", "0", "--rcvbuf", "1M", "--no-gso", "--batch", "1", "--udp-io", "batched")
	sendmmsg := map[string]uint64{"client": clientCalls}
	if serverCalls != nil {
		n, err := serverCalls()
		if err != nil {
			t.Fatalf("perf stat of the server: %v", err)
		}
		sendmmsg["server"] = n
	}
	seen, ssErrs := ssw.stop()
	if len(ssErrs) > 0 {
		t.Logf("ss failed %d times, first: %s", len(ssErrs), ssErrs[0])
	}
	outAfter := map[string]uint64{"client": udpSNMPIn(t, p.InClient)["OutDatagrams"], "server": udpSNMPIn(t, p.InServer)["OutDatagrams"]}

	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s %s: %s", r.Experiment, r.Transport, r.Error)
		}
	}
	if rep.Config.RecvBuffer != 1<<20 || !rep.Config.NoGSO || rep.Config.Batch != 1 {
		t.Errorf("config recv_buffer %d, no_gso %v, batch %d; want 1048576, true, 1", rep.Config.RecvBuffer, rep.Config.NoGSO, rep.Config.Batch)
	}
	ends := map[string]map[string]report.Sock{"client": rep.Env.Sockets}
	if rep.Env.Peer != nil {
		ends["server"] = rep.Env.Peer.Sockets
	}
	for _, end := range []string{"client", "server"} {
		wantRecv := 2 * min(1<<20, rmemMax[end])
		for _, tr := range []string{"tcp", "udp"} {
			sk, ok := ends[end][tr]
			t.Logf("%s %s in the report: recv_buffer %d, send_buffer %d, gso %v, batch %d, data_sockets %d, send calls %v, datagrams %v, refused %q; ss -m saw receive buffers %v",
				end, tr, sk.RecvBuffer, sk.SendBuffer, sk.GSO, sk.Batch, sk.DataSockets, deref(sk.SendCalls), deref(sk.SentDatagrams), sk.Refused, seen[end+" "+tr])
			if !ok {
				t.Errorf("%s %s: the report has no sockets entry (env.sockets: %v, env.peer: %+v)", end, tr, rep.Env.Sockets, rep.Env.Peer)
				continue
			}
			if sk.RecvBuffer != wantRecv || sk.DataSockets == 0 || sk.Batch != 1 || sk.GSO {
				t.Errorf("%s %s: recv_buffer %d, data_sockets %d, batch %d, gso %v; want %d (2 × min(1 MiB, rmem_max %d)) from its data sockets, batch 1, no GSO",
					end, tr, sk.RecvBuffer, sk.DataSockets, sk.Batch, sk.GSO, wantRecv, rmemMax[end])
			}
			rbs := seen[end+" "+tr]
			if len(rbs) == 0 {
				t.Errorf("%s %s: ss -m never saw a data socket during the run", end, tr)
			}
			for sock, rb := range rbs {
				if rb != sk.RecvBuffer {
					t.Errorf("%s %s: ss -m says %s has rb %d; the report says %d", end, tr, sock, rb, sk.RecvBuffer)
				}
			}
		}
		udp := ends[end]["udp"]
		calls, dgrams := orZero(udp.SendCalls), orZero(udp.SentDatagrams)
		if calls != count || dgrams != calls {
			t.Errorf("%s udp: %d send calls carried %d datagrams; want one per call, %d (the count)",
				end, calls, dgrams, count)
		}
		// The kernel counts the end's sendmmsg calls (perf, the syscall tracepoint):
		// only the data path's batched sends make them.
		if perfOK && sendmmsg[end] != calls {
			t.Errorf("%s udp: the report's %d send calls; the kernel counted %d sendmmsg calls (perf stat)", end, calls, sendmmsg[end])
		}
		// The kernel counts every datagram the namespace sent: the data, and the
		// setup's probes (client) or challenges (server), one or a few per socket.
		out := outAfter[end] - outBefore[end]
		t.Logf("%s: kernel: Udp OutDatagrams +%d, sendmmsg calls %d (perf: %v); the report: %d data datagrams in %d send calls",
			end, out, sendmmsg[end], perfOK, dgrams, calls)
		if out < dgrams || out > dgrams+16 {
			t.Errorf("%s: the kernel's Udp OutDatagrams rose by %d; want the report's %d data datagrams and a few setup datagrams",
				end, out, dgrams)
		}
	}
	cs.terminate(t)
}

// sendmmsgEvent is the kernel's tracepoint of sendmmsg(2) entries.
const sendmmsgEvent = "syscalls:sys_enter_sendmmsg"

// perfCounts reports whether perf can count a process's sendmmsg calls here (perf
// installed, the syscall tracepoints readable); the test then checks the send calls
// against the kernel's count too.
func perfCounts(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("perf"); err != nil {
		t.Logf("no perf: send calls are checked against the known count only: %v", err)
		return false
	}
	out, err := exec.Command("perf", "stat", "-x,", "-e", sendmmsgEvent, "--", "true").CombinedOutput()
	if err != nil {
		t.Logf("perf cannot count %s (%v: %s): send calls are checked against the known count only", sendmmsgEvent, err, out)
		return false
	}
	return true
}

// perfAttach starts counting pid's sendmmsg calls (its threads, and those it starts);
// the function it returns stops counting and returns the count.
func perfAttach(t *testing.T, pid int) func() (uint64, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "perf.csv")
	cmd := exec.Command("perf", "stat", "-x,", "-o", file, "-e", sendmmsgEvent, "-p", strconv.Itoa(pid))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	// perf says nothing when it is attached: wait until its counters exist.
	waitfor.True(t, 10*time.Second, "perf attached", func() bool {
		return perfAttached(cmd.Process.Pid)
	})
	return func() (uint64, error) {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			return 0, fmt.Errorf("perf stat -p %d still running 10 s after SIGINT", pid)
		}
		return readPerfCount(file)
	}
}

// perfAttached reports whether the perf process pid holds perf event descriptors.
func perfAttached(pid int) bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.Contains(l, "perf_event") {
			return true
		}
	}
	return false
}

// readPerfCount reads the count of sendmmsgEvent from perf stat -x, output.
func readPerfCount(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) >= 3 && f[2] == sendmmsgEvent {
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("perf stat output without %s:\n%s", sendmmsgEvent, b)
}

// runInCounted is runIn, with the run's sendmmsg calls counted by perf stat when
// counted is true (0 otherwise).
func runInCounted(t *testing.T, p *lab.Pair, cs *childServe, counted bool, args ...string) (report.Report, uint64) {
	t.Helper()
	if !counted {
		return runIn(t, p, cs, args...), 0
	}
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "perf.csv")
	run := helperCommand(append(append([]string{"run"}, args...), "--out", dir)...)
	cmd := exec.Command("perf", append([]string{"stat", "-x,", "-o", file, "-e", sendmmsgEvent, "--", run.Path}, run.Args[1:]...)...)
	cmd.Env = run.Env
	// Its own process group, killed whole on a timeout: perf and the run under it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := p.InClient(cmd.Start); err != nil {
		t.Fatalf("starting perf stat of run in the client namespace: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("perf stat of run %v: %v\nstderr:\n%s\nserver:\n%s", args, err, errb.String(), cs.logs.String())
		}
	case <-time.After(60 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("run %v still running after 60 s\nstderr:\n%s", args, errb.String())
	}
	n, err := readPerfCount(file)
	if err != nil {
		t.Fatal(err)
	}
	return readReport(t, dir), n
}

// orZero is *p, or 0 when p is nil.
func orZero(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// readSysctlIn reads an integer sysctl (name under /proc/sys) as a namespace of a
// Pair sees it (in is its InClient or InServer).
func readSysctlIn(t *testing.T, in func(func() error) error, name string) int {
	t.Helper()
	var n int
	err := in(func() error {
		b, err := os.ReadFile("/proc/sys/" + name)
		if err != nil {
			return err
		}
		n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if err != nil {
		t.Fatalf("sysctl %s: %v", name, err)
	}
	return n
}

// udpSNMPIn reads the Udp: line pair of /proc/net/snmp in a namespace of a Pair (in
// is its InClient or InServer).
func udpSNMPIn(t *testing.T, in func(func() error) error) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := in(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp") // this thread's namespace, not the process's
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		for sc := bufio.NewScanner(f); sc.Scan(); {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = fields[1:]
				continue
			}
			for i, v := range fields[1:] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil || i >= len(names) {
					return fmt.Errorf("snmp: Udp: %q: %v", sc.Text(), err)
				}
				out[names[i]] = n
			}
			return nil
		}
		return fmt.Errorf("snmp: no Udp: lines")
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// socketWatch polls ss -m in both namespaces of a Pair and keeps the receive buffer
// (rb) of every data socket it sees: every UDP socket, and every TCP connection but
// the control connection.
type socketWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex                // guards seen
	seen map[string]map[string]int // "client udp" → socket → rb
	errs []string                  // guarded by mu
}

// watchSockets starts polling; stop ends it and returns what it saw. ctlPort is the
// server's control port.
func watchSockets(t *testing.T, p *lab.Pair, ctlPort string) *socketWatch {
	t.Helper()
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skipf("ss (iproute2) reads the sockets' buffers from outside the tool: %v", err)
	}
	w := &socketWatch{done: make(chan struct{}), seen: map[string]map[string]int{}}
	w.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll("client", p.InClient, ctlPort)
			w.poll("server", p.InServer, ctlPort)
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			close(w.done)
		}
		w.wg.Wait()
	})
	return w
}

// stop ends the polling and returns the last receive buffer seen of each socket (a
// socket is sized once, as it opens), and the errors of ss runs.
func (w *socketWatch) stop() (map[string]map[string]int, []string) {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen, w.errs
}

// ssRB finds the receive buffer in ss -m's skmem line.
var ssRB = regexp.MustCompile(`skmem:\(r\d+,rb(\d+),`)

// poll runs ss -m once in a namespace (in) for UDP and for established TCP sockets.
func (w *socketWatch) poll(end string, in func(func() error) error, ctlPort string) {
	for _, tr := range []string{"udp", "tcp"} {
		var out []byte
		err := in(func() error {
			var err error
			out, err = exec.Command("ss", "-Hnm", "-"+tr[:1], "-a").Output()
			return err
		})
		if err != nil {
			w.mu.Lock()
			w.errs = append(w.errs, err.Error())
			w.mu.Unlock()
			continue
		}
		var sock string
		for _, line := range strings.Split(string(out), "\n") {
			if m := ssRB.FindStringSubmatch(line); m != nil && sock != "" {
				rb, _ := strconv.Atoi(m[1])
				w.mu.Lock()
				if w.seen[end+" "+tr] == nil {
					w.seen[end+" "+tr] = map[string]int{}
				}
				w.seen[end+" "+tr][sock] = rb
				w.mu.Unlock()
				sock = ""
				continue
			}
			f := strings.Fields(line)
			sock = ""
			if len(f) < 5 {
				continue
			}
			state, local, peer := f[0], f[3], f[4]
			if tr == "tcp" && (state != "ESTAB" || strings.HasSuffix(local, ":"+ctlPort) || strings.HasSuffix(peer, ":"+ctlPort)) {
				continue // the control connection, listeners, closing connections
			}
			sock = local + " " + peer
		}
	}
}
