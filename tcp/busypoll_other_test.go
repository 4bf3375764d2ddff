//go:build !linux

package tcp

import (
	"errors"
	"testing"
)

// TestBusyPollUnsupported: asking for busy polling where it is not implemented fails
// and says so.
func TestBusyPollUnsupported(t *testing.T) {
	ln, err := Listen(t.Context(), "127.0.0.1:0", Options{BusyPoll: true})
	if err == nil {
		ln.Close()
		t.Fatal("Listen with BusyPoll: no error")
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Listen with BusyPoll: %v, want errors.ErrUnsupported", err)
	}
}
