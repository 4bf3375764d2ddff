package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// serverAddr reads --server: HOST, HOST:PORT, an IPv6 address alone or [IPv6]:PORT;
// the port defaults to 'tcpvsudp serve's.
func serverAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("--server: empty; want HOST or HOST:PORT")
	}
	if ip := net.ParseIP(s); ip != nil { // an address alone, IPv6 included
		return net.JoinHostPort(s, strconv.Itoa(defaultServePort)), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil { // a name alone
		return net.JoinHostPort(s, strconv.Itoa(defaultServePort)), nil
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("--server: port must be 1..65535, got %q", port)
	}
	if host == "" {
		return "", fmt.Errorf("--server: want HOST:PORT, got %q", s)
	}
	return s, nil
}

// pendingFar stands for the far end while flags are checked: the plan validates
// against it, and doRun dials the server and puts the session in its place.
type pendingFar struct{ addr string }

func (f pendingFar) Link() bench.Link { return bench.Link{Kind: "remote", Addr: f.addr} }

func (f pendingFar) PeerEnv() *bench.Env { return nil }

func (f pendingFar) Open(context.Context, bench.FarSpec) (bench.FarCell, error) {
	return nil, errors.New("not connected")
}

// remoteDialTimeout bounds the session's handshake and every control read.
const remoteDialTimeout = 10 * time.Second

// dialFar opens the session with the server --server names, with --key-file's key.
// A key file that cannot be used is a usage error.
func dialFar(ctx context.Context, addr, keyFile string) (*farend.Far, error) {
	var key []byte
	if keyFile != "" {
		var err error
		if key, err = remote.LoadKey(keyFile); err != nil {
			return nil, usageError{fmt.Errorf("--key-file: %w", err)}
		}
	}
	f, err := farend.Dial(ctx, addr, key, remoteDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", addr, err)
	}
	return f, nil
}
