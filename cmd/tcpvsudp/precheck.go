package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// The checks here run before anything is measured, on what the flags name outside
// the process: a mistake they find is a usage error (exit status 2), not a run that
// fails cell by cell or loses its report at the end.

// localHost checks --host, where the server end of each cell listens: loopback, the
// unspecified address (every address of the host) or an address of one of this
// host's interfaces, as interfaceAddrs (net.InterfaceAddrs) lists them. No traffic
// is sent. If the interfaces cannot be listed it lets the address pass, and a cell's
// bind names the problem.
func localHost(host string, interfaceAddrs func() ([]net.Addr, error)) error {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("--host: must be an IP address, got %q", host)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() {
		return nil
	}
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		return fmt.Errorf("--host: a link-local IPv6 address needs a zone, which --host does not take; use a global address, ::1 or ::, got %q", host)
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		return nil
	}
	var have []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ifIP, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		if ifIP = ifIP.Unmap(); ifIP == ip {
			return nil
		}
		if !ifIP.IsLoopback() && !ifIP.IsLinkLocalUnicast() {
			have = append(have, ifIP.String())
		}
	}
	const most = 8
	if len(have) > most {
		have = append(have[:most], "...")
	}
	ours := "none besides loopback"
	if len(have) > 0 {
		ours = strings.Join(have, ", ")
	}
	return fmt.Errorf("--host: must be an address of this host, where the server end listens: 127.0.0.1, ::1, 0.0.0.0, :: or an interface's (%s); got %q", ours, host)
}

// outDir makes sure --out can take the report before anything is measured: it is a
// directory, or one is made there, and a file can be created in it (one is, and
// removed).
func outDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("--out: %s is %s, not a directory; want a directory (report.json and report.md go in it)", dir, remote.FileKind(fi.Mode()))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: cannot make the directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tcpvsudp-check-*")
	if err != nil {
		return fmt.Errorf("--out: cannot write in %s (the report goes there): %w", dir, pathErr(err))
	}
	name := f.Name()
	err = f.Close()
	if rmErr := os.Remove(name); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("--out: cannot write in %s (the report goes there): %w", dir, pathErr(err))
	}
	return nil
}

// pathErr drops a PathError's operation and path (a temporary file's), which the
// message need not repeat, and keeps the errno reachable.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// reportFile checks report's FILE before it is opened: a named pipe or a device
// would make the open or the read wait, with no signal able to end the wait.
func reportFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // the open says why
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("report: %s is %s, want a regular file (a report.json)", path, remote.FileKind(fi.Mode()))
	}
	return nil
}
