package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// serverAddr reads --server: HOST, HOST:PORT, an IPv6 address alone (bracketed or
// not) or [IPv6]:PORT; the port defaults to 'tcpvsudp serve's. What is neither an IP
// address nor a host name is refused here, before anything dials.
func serverAddr(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("--server: %s; want HOST or HOST:PORT (e.g. 192.0.2.10, 192.0.2.10:%d, [2001:db8::1]:%d), got %q", why, defaultServePort, defaultServePort, s)
	}
	if s == "" {
		return "", bad("empty")
	}
	alone := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		alone = s[1 : len(s)-1]
	}
	if ip, err := netip.ParseAddr(alone); err == nil { // an address alone, IPv6 included
		return net.JoinHostPort(ip.String(), strconv.Itoa(defaultServePort)), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil { // a name alone
		if !hostName(s) {
			return "", bad("not an IP address or a host name")
		}
		return net.JoinHostPort(s, strconv.Itoa(defaultServePort)), nil
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("--server: port must be 1..65535, got %q", port)
	}
	if host == "" {
		return "", bad("no host")
	}
	if _, err := netip.ParseAddr(host); err != nil && !hostName(host) {
		return "", bad(fmt.Sprintf("host %q is not an IP address or a host name", host))
	}
	return s, nil
}

// hostName reports whether s can be a DNS host name: dot-separated labels of
// letters, digits, '-' and '_', at most 253 bytes.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// pendingFar stands for the far end while flags are checked: the plan validates
// against it, and doRun dials the server and puts the session in its place.
type pendingFar struct {
	addr string
	key  []byte // --key-file's key, read while the flags were checked; nil = none
}

func (f pendingFar) Link() report.Link { return report.Link{Kind: "remote", Addr: f.addr} }

func (f pendingFar) PeerEnv() *report.Env { return nil }

func (f pendingFar) Open(context.Context, bench.FarSpec) (bench.FarCell, error) {
	return nil, errors.New("not connected")
}

// remoteDialTimeout bounds the session's handshake and every control read.
const remoteDialTimeout = 10 * time.Second

// dialFar opens the session with the server --server names, with --key-file's key.
func dialFar(ctx context.Context, pf pendingFar) (*farend.Far, error) {
	f, err := farend.Dial(ctx, pf.addr, pf.key, remoteDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", pf.addr, err)
	}
	return f, nil
}

// loadKey reads --key-file. LoadKey refuses anything but a regular file before it
// opens it, so a named pipe or a device there fails at once instead of waiting.
func loadKey(keyFile string) ([]byte, error) {
	key, err := remote.LoadKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	return key, nil
}
