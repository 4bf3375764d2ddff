package remote

import (
	"net"
	"strings"
	"testing"
)

// TestRunnerRequired: a Server without a Runner serves nothing: Serve and
// ListenAndServe return an error naming the field, and Serve closes its listener.
func TestRunnerRequired(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Key: testKey}
	const want = "remote: Server.Runner is required"
	if err := s.Serve(ln); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Serve without a Runner = %v; want an error starting %q", err, want)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("the listener still accepts after Serve refused to serve")
	}
	if err := (&Server{}).ListenAndServe("127.0.0.1:0"); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("ListenAndServe without a Runner = %v; want an error starting %q", err, want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after the refusal: %v", err)
	}
}

// TestDriverRequired: a Dialer without a Driver refuses to dial, naming the field,
// and the server sees no connection.
func TestDriverRequired(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	c, err := (&Dialer{Key: testKey}).Dial(t.Context(), addr)
	const want = "remote: Dialer.Driver is required"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial without a Driver = %v; want an error starting %q", err, want)
	}
	if c != nil {
		t.Errorf("Dial without a Driver returned a client along with %v", err)
	}
	if n := s.Stats().Accepted; n != 0 {
		t.Errorf("the server accepted %d connections; want none", n)
	}
}
