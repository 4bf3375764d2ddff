//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadKeyNotRegular: a named pipe or a device as the key file is refused at once,
// naming what it is. A FIFO must not make LoadKey wait for a writer (open(2) of a
// FIFO for reading blocks until one comes, and no signal handler can end that wait).
func TestLoadKeyNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"fifo", fifo, "is a named pipe (FIFO), want a regular file"},
		{"character device", os.DevNull, "is a character device, want a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				key []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				key, err := LoadKey(tc.path)
				done <- result{key, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
				// Release the blocked open: a writer arrives and leaves at once.
				if w, err := os.OpenFile(tc.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatalf("LoadKey(%s) still waiting after 10 s; want a prompt error %q", tc.path, tc.want)
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || !strings.Contains(r.err.Error(), tc.path) {
				t.Fatalf("LoadKey(%s) = %q, %v; want an error naming the path and %q", tc.path, r.key, r.err, tc.want)
			}
		})
	}
}
