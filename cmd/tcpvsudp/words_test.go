package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// pwned is a server's words made to drive a terminal: an 8-bit CSI clearing the
// screen and turning it red, and a right-to-left override that shows "exe.png".
const pwned = "\u009b2J\u009b31mPWNED \u202egnp.exe"

// pwnedShown is pwned as the client shows it.
const pwnedShown = `\u009b2J\u009b31mPWNED \u202egnp.exe`

// rawIn names the first of pwned's characters s holds raw, if any.
func rawIn(s string) string {
	for _, c := range []string{"\u009b", "\u202e", "\x1b"} {
		if strings.Contains(s, c) {
			return c
		}
	}
	return ""
}

// wordyRunner is farend's Runner on a server whose figures carry hostile words: a
// warning, and its host's name, in the counters JSON (which no decoder checks for
// text).
type wordyRunner struct{ farend.Runner }

func (r wordyRunner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	res, err := r.Runner.Serve(ctx, d)
	var c map[string]any
	if json.Unmarshal(res.Counters, &c) == nil {
		w, _ := c["warnings"].([]any)
		c["warnings"] = append(w, "the disk said "+pwned)
		if env, ok := c["env"].(map[string]any); ok {
			env["host"], env["kernel"] = pwned, pwned
		}
		res.Counters, _ = json.Marshal(c)
	}
	return res, err
}

// TestRunServerWordsEscaped: a server's words in its figures reach the terminal
// (warnings on stderr, the tables on stdout) and the report escaped, never raw.
func TestRunServerWordsEscaped(t *testing.T) {
	addr, keyFile := startKeyedServer(t, func(*remote.Server) remote.Runner { return wordyRunner{} })
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--server", addr, "--key-file", keyFile, "-e", "pingpong", "-t", "tcp",
		"--count", "20", "--sizes", "64", "--warmup", "10ms", "--timeout", lossTimeout, "--out", dir}, &out, &errb)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
	}
	for name, s := range map[string]string{"stdout": out.String(), "stderr": errb.String()} {
		if c := rawIn(s); c != "" {
			t.Errorf("%s holds %U raw:\n%s", name, []rune(c)[0], s)
		}
	}
	if !strings.Contains(errb.String(), "the disk said "+pwnedShown) { // without -v, warnings go to stderr
		t.Errorf("stderr does not show the server's warning escaped (%s):\n%s", pwnedShown, errb.String())
	}
	rep := readReport(t, dir)
	if len(rep.Results) != 1 || !strings.Contains(strings.Join(rep.Results[0].Warnings, "\n"), "the disk said "+pwnedShown) {
		t.Errorf("report results %+v: want the server's warning, escaped", rep.Results)
	}
	if rep.Env.Peer == nil || rep.Env.Peer.Host != pwnedShown || rep.Env.Peer.Kernel != pwnedShown {
		t.Errorf("report env.peer %+v: want the server host's name and kernel escaped, %s", rep.Env.Peer, pwnedShown)
	}
}

// halfRunner is farend's Runner on a server whose half fails once it measured:
// it reports its figures, incomplete.
type halfRunner struct{ farend.Runner }

func (r halfRunner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	res, err := r.Runner.Serve(ctx, d)
	res.Complete, res.Error = false, "the echo stopped early: disk full"
	return res, err
}

// TestRunServerHalfIncomplete: a cell whose server half did not complete is not a
// measurement: it fails, saying so, and the run exits 1 (not a usage error). The
// session stays usable (the results crossed), so the report is not incomplete.
func TestRunServerHalfIncomplete(t *testing.T) {
	addr, keyFile := startKeyedServer(t, func(*remote.Server) remote.Runner { return halfRunner{} })
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--server", addr, "--key-file", keyFile, "-e", "pingpong", "-t", "tcp",
		"--count", "20", "--sizes", "64", "--warmup", "10ms", "--timeout", lossTimeout, "--out", dir}, &out, &errb)
	var ue usageError
	if err == nil || errors.As(err, &ue) || err.Error() != "1 of 1 cells failed; see the report" {
		t.Fatalf("run against a server whose half did not complete: %v; want a run error (exit 1) saying the cell was not measured\nstderr:\n%s", err, errb.String())
	}
	rep := readReport(t, dir)
	if rep.Incomplete != "" {
		t.Errorf("report incomplete: %s; want the session kept after a failed test", rep.Incomplete)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	if r.Measured() || !strings.Contains(r.Error, "did not complete its half") || !strings.Contains(r.Error, "disk full") {
		t.Errorf("result: measured %v, error %q; want not measured, saying the server did not complete its half, and why", r.Measured(), r.Error)
	}
	if !strings.Contains(errb.String(), "not measured: ") || !strings.Contains(errb.String(), "disk full") {
		t.Errorf("stderr does not say the cell was not measured, and why:\n%s", errb.String())
	}
}

// refusingProxy relays sessions between a client and the server at addr, frame by
// frame, but answers the client's results of a session's first test with body, a
// frame it does not check, before the server's results: a server that refuses a
// test it has run, as a hostile or broken one may. The data path goes to the server
// directly (same host).
func refusingProxy(t *testing.T, addr, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				return
			}
			var mu sync.Mutex // serialises writes to c
			write := func(b []byte) error {
				mu.Lock()
				defer mu.Unlock()
				_, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
				return err
			}
			wg.Go(func() { // server to client
				defer c.Close()
				for {
					b, err := remote.ReadFrame(s)
					if err != nil || write(b) != nil {
						return
					}
				}
			})
			wg.Go(func() { // client to server, refusing the first results
				defer s.Close()
				refused := false
				for {
					b, err := remote.ReadFrame(c)
					if err != nil {
						return
					}
					if m, err := remote.Decode(b); err == nil && m.Type() == remote.TypeResults && !refused {
						refused = true
						if write([]byte(body)) != nil {
							return
						}
					}
					if _, err := s.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestRunServerRefusedAfterRun: a server that refuses a test once it ran (so that it
// never reports its half) fails the cell, and the run exits 1, not 0; the refusal's
// words reach the terminal escaped or not at all: a reason that would drive the
// terminal is refused at decode, as malformed.
func TestRunServerRefusedAfterRun(t *testing.T) {
	addr, keyFile := startKeyedServer(t, nil)
	for _, tc := range []struct {
		name, reason string
		want         string // in the cell's error
	}{
		{"plain words", "no more tests today", "did not complete its half"},
		{"words that drive a terminal", `\u009b2J\u009b31mPWNED \u202egnp.exe`, "control character U+009B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := refusingProxy(t, addr, `{"v":1,"type":"refuse","id":1,"error":"`+tc.reason+`"}`)
			dir := t.TempDir()
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"run", "--server", proxy, "--key-file", keyFile, "-e", "pingpong", "-t", "tcp",
				"--count", "20", "--sizes", "64", "--warmup", "10ms", "--timeout", lossTimeout, "--out", dir}, &out, &errb)
			var ue usageError
			if err == nil || errors.As(err, &ue) {
				t.Fatalf("run: %v; want a run error (exit 1): the server did not complete its half\nstderr:\n%s", err, errb.String())
			}
			for name, s := range map[string]string{"stdout": out.String(), "stderr": errb.String(), "the error": err.Error()} {
				if c := rawIn(s); c != "" {
					t.Errorf("%s holds %U raw:\n%s", name, []rune(c)[0], s)
				}
			}
			rep := readReport(t, dir)
			if len(rep.Results) != 1 || rep.Results[0].Measured() || !strings.Contains(rep.Results[0].Error, tc.want) {
				t.Fatalf("results %+v: want one, not measured, its error saying %q", rep.Results, tc.want)
			}
			t.Logf("run: %v; the cell: %s", err, rep.Results[0].Error)
		})
	}
}
