package remote

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// failFirst fails its first test's half, then completes every later one at once.
type failFirst struct{ n *atomic.Int32 }

func (failFirst) Check(TestRequest) error { return nil }

func (f failFirst) Serve(ctx context.Context, d *Data) (Results, error) {
	if f.n.Add(1) == 1 {
		return Results{Error: "the half failed on purpose"}, errors.New("the half failed on purpose")
	}
	return Results{Complete: true}, nil
}

// TestIncompleteTestKeepsSession: a test whose server half fails is reported as a
// *TestError with the server's reason, and the session goes on: the next test on it
// runs and completes.
func TestIncompleteTestKeepsSession(t *testing.T) {
	addr := startServer(t, &Server{Key: testKey, Runner: failFirst{n: new(atomic.Int32)}})
	done := driverFunc(func(ctx context.Context, d *Data) (Results, error) { return Results{Complete: true}, nil })
	c, err := (&Dialer{Key: testKey, Driver: done}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := TestRequest{Experiment: "half", Transport: "tcp", Size: 100, Duration: 1e9, Streams: 1, Direction: Forward}
	_, err = c.Run(t.Context(), req)
	var te *TestError
	if !errors.As(err, &te) || te.ID != 1 || !errors.Is(err, te.Err) {
		t.Fatalf("first test: %v (%T), want a *TestError for test 1", err, err)
	}
	if want := "remote: test 1 incomplete on the server: the half failed on purpose"; err.Error() != want {
		t.Errorf("first test: %q, want %q", err, want)
	}
	res, err := c.Run(t.Context(), req)
	if err != nil || !res.Complete {
		t.Fatalf("second test on the same session: %v, complete %v; want it run", err, res.Complete)
	}
}
