package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childHangGuard is how long a child that should exit at once may take before the
// test gives up on it: a guard against a hang, never a timing assertion.
const childHangGuard = 10 * time.Second

// runChild runs 'tcpvsudp ARGS' as a child process in dir (where a default --out
// would land) and returns its exit status and output. A child still running after
// childHangGuard is killed and the test fails.
func runChild(t *testing.T, dir string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := helperCommand(args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(childHangGuard):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("tcpvsudp %q still running after %v (killed); want it to exit at once\nstderr:\n%s", args, childHangGuard, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("tcpvsudp %q: %v\nstderr:\n%s", args, err, errb.String())
	return 0, "", ""
}

// TestKeyFileFIFO: a named pipe as --key-file is refused at once, exit status 2,
// naming the flag and what the file is, by serve and by run. Opening a FIFO for
// reading waits for a writer, and no signal handler can end that wait: the command
// hung and then ignored SIGINT and SIGTERM (issue 13, item 4).
func TestKeyFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--key-file", fifo},
		{"run", "--server", "127.0.0.1:1", "--key-file", fifo},
	} {
		t.Run(args[0], func(t *testing.T) {
			status, _, stderr := runChild(t, dir, args...)
			want := "--key-file: remote: key file " + fifo + " is a named pipe (FIFO), want a regular file"
			if status != 2 || !strings.Contains(stderr, want) {
				t.Errorf("tcpvsudp %q: exit status %d, stderr:\n%s\nwant status 2 and %q", args, status, stderr, want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); err == nil {
		t.Error("run with an unusable key file made the results directory")
	}
}

// TestUsageExitStatus: mistakes that can be found before anything is measured exit
// with status 2, naming the flag and what it wants, and measure nothing: no progress
// line, no table (issue 13, item 7). A FIFO given to report is refused too, rather
// than waited on.
func TestUsageExitStatus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "report.fifo") // its open would wait for a writer
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	// One short cell: should a check be missing, the run is over in a moment and
	// fails the test by its exit status, not by the hang guard.
	cell := []string{"-e", "stream", "-t", "udp", "--sizes", "64", "--count", "10", "--warmup", "0", "--drain", "0"}
	tests := []struct {
		name string
		args []string
		want []string
		skip func() string // why the case cannot run here, or ""
	}{
		{name: "run with an extra argument", args: []string{"run", "extra-arg"},
			want: []string{"takes no arguments", `"extra-arg"`, "see 'tcpvsudp --help'"}},
		{name: "server address unclosed bracket", args: []string{"run", "--server", "[::1"},
			want: []string{"--server", "HOST:PORT", `"[::1"`}},
		{name: "udp-io unknown", args: append([]string{"run", "--udp-io", "batched,fast"}, cell...),
			want: []string{"--udp-io", "batched, textbook or both", `"batched,fast"`}},
		{name: "verify unknown", args: append([]string{"run", "--verify", "off"}, cell...),
			want: []string{"--verify", "payload or header", `"off"`}},
		{name: "verify empty", args: append([]string{"run", "--verify="}, cell...),
			want: []string{"--verify", "payload or header", `""`}},
		{name: "out is a file", args: append([]string{"run", "--out", file}, cell...),
			want: []string{"--out", file, "not a directory"}},
		{name: "report of a FIFO", args: []string{"report", fifo},
			want: []string{"report: " + fifo + " is a named pipe (FIFO), want a regular file"}},
		{name: "out not writable", args: append([]string{"run", "--out", "/sys/kernel"}, cell...),
			want: []string{"--out", "/sys/kernel", "cannot write"}, skip: func() string {
				f, err := os.CreateTemp("/sys/kernel", ".tcpvsudp-test-*")
				if err != nil {
					return ""
				}
				f.Close()
				os.Remove(f.Name())
				return "/sys/kernel is writable here"
			}},
		{name: "host not of this host", args: append([]string{"run", "--no-files", "--host", notLocalIP}, cell...),
			want: []string{"--host", "an address of this host", notLocalIP}, skip: func() string {
				if err := localHost(notLocalIP, net.InterfaceAddrs); err == nil {
					return notLocalIP + " is an address of this host"
				}
				return ""
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != nil {
				if why := tc.skip(); why != "" {
					t.Skip(why)
				}
			}
			status, stdout, stderr := runChild(t, dir, tc.args...)
			if status != 2 {
				t.Errorf("tcpvsudp %q: exit status %d, want 2 (usage)\nstderr:\n%s", tc.args, status, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("tcpvsudp %q: stderr does not say %q:\n%s", tc.args, w, stderr)
				}
			}
			if stdout != "" || strings.Contains(stderr, "[1/") {
				t.Errorf("tcpvsudp %q measured before it refused: stdout:\n%s\nstderr:\n%s", tc.args, stdout, stderr)
			}
		})
	}
}
